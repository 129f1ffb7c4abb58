package main

import "testing"

func TestParseLoops(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"", 0, true}, {"off", -1, true}, {"1", 1, true}, {"8", 8, true},
		{"0", 0, false}, {"-1", 0, false}, {"257", 0, false}, {"two", 0, false},
	} {
		got, err := parseLoops(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseLoops(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
