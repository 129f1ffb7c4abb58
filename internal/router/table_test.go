package router

import "testing"

// TestLookupDoesNotAllocate: finding a route, exact, by wildcard or not at
// all, is on every request's path.
func TestLookupDoesNotAllocate(t *testing.T) {
	var s states
	tab := s.build([]Route{{App: "a", Hosts: []string{"a.skiff.test", "*.wild.example.com"}}}, 0)
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"A.skiff.test:8080", true},
		{"x.wild.example.com.", true},
		{"x.y.wild.example.com", false},
		{"nope.skiff.test", false},
	} {
		host := []byte(tc.host)
		if got := tab.lookup(host) != nil; got != tc.want {
			t.Errorf("lookup(%q) found %v, want %v", tc.host, got, tc.want)
		}
		if n := testing.AllocsPerRun(100, func() { tab.lookup(host) }); n != 0 {
			t.Errorf("lookup(%q): %v allocations", tc.host, n)
		}
	}
}
