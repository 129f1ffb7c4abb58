package platform

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/store"
)

// Drain is one of an app's log drains: a syslog or HTTPS endpoint that gets
// a copy of every line of the app's log.
type Drain = store.Drain

// MaxDrains is how many drains one app may have, as on Heroku.
const MaxDrains = 5

// maxDrainURL bounds a drain URL's length.
const maxDrainURL = 2048

// CheckDrainURL says why raw cannot be a drain URL, or nil. Accepted:
// syslog://host:port (TCP), syslog+tls://host:port, https://… and http://…
// (userinfo for basic auth allowed).
func CheckDrainURL(raw string) error {
	if raw == "" {
		return errorf(KindInvalid, "Url can't be blank.")
	}
	if len(raw) > maxDrainURL {
		return errorf(KindInvalid, "Url is too long (at most %d characters).", maxDrainURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errorf(KindInvalid, "Url %q is invalid: expected syslog://host:port, syslog+tls://host:port or https://host/path.", raw)
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return errorf(KindInvalid, "Url must not contain spaces or line breaks.")
	}
	switch u.Scheme {
	case "syslog", "syslog+tls":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" {
			return errorf(KindInvalid, "Url %q is invalid: a syslog drain needs a host and a port, e.g. %s://logs.example.com:514.", raw, u.Scheme)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return errorf(KindInvalid, "Url %q is invalid: a syslog drain is only %s://host:port.", raw, u.Scheme)
		}
	case "https", "http":
		if u.Hostname() == "" {
			return errorf(KindInvalid, "Url %q is invalid: no host.", raw)
		}
	default:
		return errorf(KindInvalid, "Url %q has an unsupported scheme: use syslog://, syslog+tls:// or https://.", raw)
	}
	return nil
}

// AddDrain adds a drain to an app. The drain's token is d.<uuid>.
func (p *Platform) AddDrain(ctx context.Context, actor *Account, ident, rawURL string) (*Drain, error) {
	if err := CheckDrainURL(rawURL); err != nil {
		return nil, err
	}
	var d *Drain
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		have, err := tx.Drains(app.ID)
		if err != nil {
			return err
		}
		if len(have) >= MaxDrains {
			return errorf(KindInvalid, "An app can have at most %d log drains; %s has %d. Remove one first.", MaxDrains, app.Name, len(have))
		}
		now := p.now()
		d = &Drain{ID: newID(), AppID: app.ID, URL: rawURL, Token: "d." + uuid.NewString(), CreatedAt: now, UpdatedAt: now}
		if err := tx.CreateDrain(d); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errorf(KindInvalid, "Url has already been taken: %s already drains to it.", app.Name)
			}
			return err
		}
		*ev = append(*ev, Event{Kind: EventDrains, AppID: app.ID, AppName: app.Name, Time: now})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Drains lists an app's drains, oldest first.
func (p *Platform) Drains(ctx context.Context, actor *Account, ident string) ([]*Drain, *App, error) {
	var out []*Drain
	var app *App
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		out, err = tx.Drains(app.ID)
		return err
	})
	return out, app, err
}

// Drain returns one of an app's drains by id, token or URL.
func (p *Platform) Drain(ctx context.Context, actor *Account, ident, drain string) (*Drain, *App, error) {
	ds, app, err := p.Drains(ctx, actor, ident)
	if err != nil {
		return nil, nil, err
	}
	d, err := findDrain(ds, drain)
	return d, app, err
}

func findDrain(ds []*Drain, ident string) (*Drain, error) {
	for _, d := range ds {
		if d.ID == ident || d.Token == ident || d.URL == ident {
			return d, nil
		}
	}
	return nil, errorf(KindNotFound, "Couldn't find that log drain.")
}

// RemoveDrain deletes one of an app's drains by id, token or URL and
// returns it.
func (p *Platform) RemoveDrain(ctx context.Context, actor *Account, ident, drain string) (*Drain, *App, error) {
	var d *Drain
	var app *App
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		ds, err := tx.Drains(app.ID)
		if err != nil {
			return err
		}
		if d, err = findDrain(ds, drain); err != nil {
			return err
		}
		if err := tx.DeleteDrain(app.ID, d.ID); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventDrains, AppID: app.ID, AppName: app.Name, Time: p.now()})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return d, app, nil
}

// AllDrains lists every app's drains, for the delivery loop (no actor).
func (p *Platform) AllDrains(ctx context.Context) ([]*Drain, error) {
	var out []*Drain
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.AllDrains()
		return err
	})
	return out, err
}

// AppDrains lists one app's drains, for the delivery loop (no actor).
func (p *Platform) AppDrains(ctx context.Context, appID string) ([]*Drain, error) {
	var out []*Drain
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.Drains(appID)
		return err
	})
	return out, err
}
