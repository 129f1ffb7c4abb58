// Package clocktest is a settable clock for tests of code that takes a
// Now func() time.Time, so that expiry, renewal and rate limits are tested
// by moving time rather than by sleeping.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a time that moves only when told to. It is safe for concurrent
// use: the code under test reads it while the test moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock set to t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time; pass c.Now where a Now func is taken.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
