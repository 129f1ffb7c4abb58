package hostlock

import (
	"testing"
	"time"
)

func TestAcquireExcludes(t *testing.T) {
	name := "hostlock-test-" + time.Now().Format("150405.000000000")
	a, err := Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Lock)
	go func() {
		b, err := Acquire(name)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case <-got:
		t.Fatal("second Acquire succeeded while the first was held")
	case <-time.After(100 * time.Millisecond):
	}
	a.Release()
	b := <-got
	b.Release()
	b.Release() // idempotent
}

func TestAcquireBadName(t *testing.T) {
	for _, name := range []string{"", "a/b", "../x"} {
		if _, err := Acquire(name); err == nil {
			t.Errorf("Acquire(%q) succeeded", name)
		}
	}
}
