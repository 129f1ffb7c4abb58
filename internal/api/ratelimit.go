package api

import (
	"sync"
	"time"
)

// limiter is a token bucket per key (an account, or a client address for
// unauthenticated calls), with Heroku's figures by default: 4 500 requests,
// refilled at 75 a minute.
type limiter struct {
	capacity float64
	refill   float64 // tokens per second
	now      func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(capacity int, perMinute float64, now func() time.Time) *limiter {
	return &limiter{capacity: float64(capacity), refill: perMinute / 60, now: now, buckets: map[string]*bucket{}}
}

// take spends cost tokens of key's bucket. It reports whether they were
// there and how many whole tokens remain.
func (l *limiter) take(key string, cost float64) (ok bool, remaining int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.capacity, at: now}
		l.buckets[key] = b
		if len(l.buckets) > 100000 {
			l.sweep(now)
		}
	}
	b.tokens = min(l.capacity, b.tokens+now.Sub(b.at).Seconds()*l.refill)
	b.at = now
	if b.tokens < cost {
		return false, int(b.tokens)
	}
	b.tokens -= cost
	return true, int(b.tokens)
}

// sweep forgets buckets that have refilled completely: they are
// indistinguishable from new ones. Called with mu held.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.refill >= l.capacity {
			delete(l.buckets, k)
		}
	}
}
