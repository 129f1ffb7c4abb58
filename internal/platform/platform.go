// Package platform holds Skiff's domain rules: who may touch which app, what
// creates a release and how it is described, how formation is scaled and
// within which limits. It knows nothing of HTTP; package api translates.
//
// Every change is one store transaction; audit events are published only
// after that transaction commits, so nothing is announced that did not
// happen.
package platform

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/store"
)

// Platform is the domain service over a store.
type Platform struct {
	db     *store.DB
	events *Bus
	now    func() time.Time
	limits Limits
	base   string // base domain: apps answer on <app>.<base>
}

// Limits bounds what one app may ask for.
type Limits struct {
	MaxDynos int // dynos per app, all types together (Heroku: 100)
}

// Option configures a Platform.
type Option func(*Platform)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(p *Platform) { p.now = now } }

// WithLimits replaces the default limits.
func WithLimits(l Limits) Option { return func(p *Platform) { p.limits = l } }

// New returns a Platform over db that publishes its events on bus.
func New(db *store.DB, bus *Bus, opts ...Option) *Platform {
	p := &Platform{db: db, events: bus, now: time.Now, limits: Limits{MaxDynos: 100}, base: "localhost"}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Events returns the bus the platform publishes on.
func (p *Platform) Events() *Bus { return p.events }

// Kind classifies an Error so the API can pick a status and id.
type Kind int

// The kinds of domain error.
const (
	KindInvalid      Kind = iota + 1 // the request's content breaks a rule (422)
	KindNotFound                     // a named thing does not exist (404)
	KindForbidden                    // it exists, the actor may not touch it (403)
	KindConflict                     // it would clash with existing state (409)
	KindUnauthorized                 // no valid credential (401)
)

// Error is a domain error with a message fit for the user.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err's *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func newID() string { return uuid.NewString() }

// write runs fn in a write transaction and, once it has committed,
// publishes the events fn collected.
func (p *Platform) write(ctx context.Context, fn func(tx *store.Tx, ev *[]Event) error) error {
	var events []Event
	if err := p.db.Write(ctx, func(tx *store.Tx) error {
		events = events[:0]
		return fn(tx, &events)
	}); err != nil {
		return err
	}
	for _, e := range events {
		p.events.Publish(e)
	}
	return nil
}

func (p *Platform) read(ctx context.Context, fn func(tx *store.Tx) error) error {
	return p.db.Read(ctx, fn)
}
