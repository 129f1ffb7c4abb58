package platform

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what changed.
type EventKind string

// Event kinds. The dyno manager reacts to release, formation and destroy
// events; every event with a Message is also an audit line for the app's log.
const (
	EventAudit     EventKind = "audit"     // only an audit line
	EventRelease   EventKind = "release"   // a new release is current
	EventFormation EventKind = "formation" // quantities or sizes changed
	EventDestroy   EventKind = "destroy"   // the app is gone
	EventApp       EventKind = "app"       // name, maintenance or stack changed
	EventDrains    EventKind = "drains"    // a log drain was added or removed
)

// Event is one committed change to an app. Message, when set, is the audit
// line Heroku writes as app[api], e.g. "Set FOO config vars by user a@b.c".
type Event struct {
	Kind    EventKind
	AppID   string
	AppName string
	Message string
	Time    time.Time
}

// Bus fans events out to subscribers. Publishing never blocks: a subscriber
// whose buffer is full loses the event, and the loss is counted.
type Bus struct {
	mu      sync.RWMutex
	subs    map[*Subscription]struct{}
	dropped atomic.Uint64
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: map[*Subscription]struct{}{}} }

// Subscription receives events on C until Close.
type Subscription struct {
	C   <-chan Event
	c   chan Event
	bus *Bus
}

// Subscribe returns a subscription with a buffer of n events.
func (b *Bus) Subscribe(n int) *Subscription {
	c := make(chan Event, n)
	s := &Subscription{C: c, c: c, bus: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Close stops delivery to s.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
}

// Publish delivers e to every subscriber that has room.
func (b *Bus) Publish(e Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			b.dropped.Add(1)
		}
	}
}

// Dropped reports how many deliveries were lost to full buffers.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }
