package router

import (
	"net"
	"testing"
	"time"
)

// deadlineConn records the read deadlines set on it.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.set = append(c.set, t)
	return nil
}

func TestSetDeadlineLazily(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	const timeout = 30 * time.Second // slack: min(30s/64, 100ms) = 100ms
	tests := []struct {
		name    string
		cur, d  time.Time
		timeout time.Duration
		moved   bool
	}{
		{"none set yet", time.Time{}, t0, timeout, true},
		{"within the slack", t0, t0.Add(50 * time.Millisecond), timeout, false},
		{"same", t0, t0, timeout, false},
		{"past the slack", t0, t0.Add(150 * time.Millisecond), timeout, true},
		{"earlier deadline wanted", t0, t0.Add(-time.Millisecond), timeout, true},
		{"short timeout, small slack", t0, t0.Add(2 * time.Millisecond), 64 * time.Millisecond, true},
		{"short timeout, within", t0, t0.Add(time.Millisecond), 64 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &deadlineConn{}
			got := setDeadlineLazily(c, tt.cur, tt.d, tt.timeout)
			if moved := len(c.set) == 1; moved != tt.moved {
				t.Fatalf("moved %v, want %v", moved, tt.moved)
			}
			want := tt.cur
			if tt.moved {
				want = tt.d
				if !c.set[0].Equal(tt.d) {
					t.Errorf("set %v, want %v", c.set[0], tt.d)
				}
			}
			if !got.Equal(want) {
				t.Errorf("returned %v, want %v", got, want)
			}
		})
	}
}
