package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/skiffhq/skiff/internal/store"
)

// Domain is one hostname an app answers on: its default <app>.<base domain>
// (Kind "heroku", not stored, following the app's name) or a custom one.
type Domain = store.Domain

// EventDomains says an app's custom domains, SNI endpoints or certificates
// changed: the router's table and the certificate index reload on it.
const EventDomains EventKind = "domains"

// Domain kinds, as the Platform API names them.
const (
	KindHeroku = "heroku"
	KindCustom = "custom"
)

// ACM statuses of a custom domain, as Heroku's CLI reads them: nil is
// "Waiting" (ACM off or not yet looked at).
const (
	ACMPending    = "pending"     // queued for a certificate
	ACMVerified   = "verified"    // the ACME order is under way ("In Progress")
	ACMCertIssued = "cert issued" // the domain has a current certificate
	ACMFailing    = "failing"     // validation failed; retrying
	ACMFailed     = "failed"      // gave up; `heroku certs:auto:refresh` retries
)

// maxDomains is Heroku's limit of custom domains per app.
const maxDomains = 1000

// WithBaseDomain sets the base domain: each app's default hostname is
// <app>.<base>, and custom domains' DNS targets live under it.
func WithBaseDomain(base string) Option {
	return func(p *Platform) { p.base = strings.TrimSuffix(strings.ToLower(base), ".") }
}

// BaseDomain returns the platform's base domain.
func (p *Platform) BaseDomain() string { return p.base }

// DefaultHostname is the hostname every app answers on without a custom domain.
func (p *Platform) DefaultHostname(appName string) string { return appName + "." + p.base }

// herokuDomain is the app's default domain entry. Its id is derived from
// the app's, so it is stable without being stored.
func (p *Platform) herokuDomain(app *App) *Domain {
	return &Domain{ID: stableID("domain", app.ID), AppID: app.ID, AppName: app.Name, Hostname: p.DefaultHostname(app.Name),
		Status: "none", CreatedAt: app.CreatedAt, UpdatedAt: app.UpdatedAt}
}

// IsDefault reports whether d is an app's default (kind heroku) domain.
func IsDefault(d *Domain) bool { return d.CNAME == "" }

// normalizeHostname checks a hostname as Heroku accepts it and returns its
// canonical (lowercase, no trailing dot) form. A wildcard is allowed only
// as the whole first label, over at least two more labels.
func (p *Platform) normalizeHostname(raw string) (string, error) {
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(raw)), ".")
	if h == "" {
		return "", errorf(KindInvalid, "Hostname must not be empty.")
	}
	for _, r := range h {
		if r > 127 {
			return "", errorf(KindInvalid, "Hostname %s contains non-ASCII characters: add its ASCII (punycode, xn--) form instead.", raw)
		}
	}
	if len(h) > 253 {
		return "", errorf(KindInvalid, "Hostname %s is too long (maximum is 253 characters).", raw)
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return "", errorf(KindInvalid, "Hostname %s is an IP address; add a DNS name instead.", raw)
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return "", errorf(KindInvalid, "Hostname %s must be a fully qualified domain name, such as www.example.com.", raw)
	}
	for i, l := range labels {
		if l == "*" && i == 0 {
			if len(labels) < 3 {
				return "", errorf(KindInvalid, "Wildcard hostname %s must have at least two labels after the *, such as *.example.com.", raw)
			}
			continue
		}
		if err := checkLabel(l); err != "" {
			return "", errorf(KindInvalid, "Hostname %s is invalid: %s.", raw, err)
		}
	}
	if h == p.base || strings.HasSuffix(h, "."+p.base) {
		return "", errorf(KindInvalid, "Hostname %s is under %s, which this platform reserves for its own app and DNS target names.", raw, p.base)
	}
	return h, nil
}

func checkLabel(l string) string {
	switch {
	case l == "":
		return "it has an empty label"
	case strings.Contains(l, "*"):
		return "a wildcard (*) may only be the whole first label"
	case len(l) > 63:
		return fmt.Sprintf("label %q is longer than 63 characters", l)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Sprintf("label %q starts or ends with a hyphen", l)
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Sprintf("label %q may contain only letters, digits and hyphens", l)
		}
	}
	return ""
}

// newCNAME returns a fresh DNS target under the base domain, in Heroku's
// <adjective>-<noun>-<random> shape. It is longer than any app name, so it
// never collides with an app's default hostname.
func (p *Platform) newCNAME(tx *store.Tx) (string, error) {
	for range 20 {
		b := make([]byte, 12)
		rand.Read(b)
		c := fmt.Sprintf("%s-%s-%s.%s", adjectives[int(b[0])%len(adjectives)], nouns[int(b[1])%len(nouns)], hex.EncodeToString(b), p.base)
		taken, err := tx.CNAMETaken(c)
		if err != nil {
			return "", err
		}
		if !taken {
			return c, nil
		}
	}
	return "", errors.New("no free DNS target after 20 tries")
}

// findDomain resolves a domain of app by id or hostname, including the
// default domain.
func (p *Platform) findDomain(tx *store.Tx, app *App, ident string) (*Domain, error) {
	h := p.herokuDomain(app)
	if ident == h.ID || strings.EqualFold(strings.TrimSuffix(ident, "."), h.Hostname) {
		return h, nil
	}
	d, err := tx.DomainByID(ident)
	if errors.Is(err, store.ErrNotFound) {
		d, err = tx.DomainByHostname(strings.TrimSuffix(strings.ToLower(ident), "."))
	}
	if errors.Is(err, store.ErrNotFound) || err == nil && d.AppID != app.ID {
		return nil, errorf(KindNotFound, "Couldn't find that domain.")
	}
	return d, err
}

// appDomain resolves an app the actor may use and one of its domains.
func (p *Platform) appDomain(tx *store.Tx, actor *Account, ident, domain string) (*App, *Domain, error) {
	app, err := access(tx, actor, ident)
	if err != nil {
		return nil, nil, err
	}
	d, err := p.findDomain(tx, app, domain)
	return app, d, err
}

// Domains lists an app's domains: the default one first, then the custom
// ones by hostname.
func (p *Platform) Domains(ctx context.Context, actor *Account, ident string) (*App, []*Domain, error) {
	var app *App
	var ds []*Domain
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		ds, err = tx.Domains(app.ID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return app, append([]*Domain{p.herokuDomain(app)}, ds...), nil
}

// Domain returns one of an app's domains by id or hostname.
func (p *Platform) Domain(ctx context.Context, actor *Account, ident, domain string) (*Domain, error) {
	var d *Domain
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		_, d, err = p.appDomain(tx, actor, ident, domain)
		return err
	})
	return d, err
}

// CreateDomain adds a custom hostname to an app. sni, when set, names
// (or is the id of) one of the app's SNI endpoints to serve it with. A
// hostname belongs to at most one app.
func (p *Platform) CreateDomain(ctx context.Context, actor *Account, ident, hostname string, sni *string) (*Domain, error) {
	var d *Domain
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		h, err := p.normalizeHostname(hostname)
		if err != nil {
			return err
		}
		if other, err := tx.DomainByHostname(h); err == nil {
			if other.AppID == app.ID {
				return errorf(KindInvalid, "Hostname %s is already added to this app.", h)
			}
			return errorf(KindInvalid, "Hostname %s is already in use by another app.", h)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if n, err := tx.DomainCount(app.ID); err != nil {
			return err
		} else if n >= maxDomains {
			return errorf(KindInvalid, "An app may have at most %d custom domains.", maxDomains)
		}
		now := p.now()
		d = &Domain{ID: newID(), AppID: app.ID, AppName: app.Name, Hostname: h, Status: "succeeded", CreatedAt: now, UpdatedAt: now}
		if d.CNAME, err = p.newCNAME(tx); err != nil {
			return err
		}
		if app.ACM {
			s := ACMPending
			d.ACMStatus = &s
		}
		if err := associate(tx, app, d, sni); err != nil {
			return err
		}
		if err := tx.CreateDomain(d); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errorf(KindInvalid, "Hostname %s is already in use by another app.", h)
			}
			return err
		}
		*ev = append(*ev, Event{Kind: EventDomains, AppID: app.ID, AppName: app.Name, Time: now})
		return nil
	})
	return d, err
}

// SetDomainSNIEndpoint associates a custom domain with one of the app's
// SNI endpoints (by name or id), or with none when sni is nil or empty.
func (p *Platform) SetDomainSNIEndpoint(ctx context.Context, actor *Account, ident, domain string, sni *string) (*Domain, error) {
	var d *Domain
	var app *App
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		app, d, err = p.appDomain(tx, actor, ident, domain)
		if err != nil {
			return err
		}
		if IsDefault(d) {
			return errorf(KindInvalid, "The default domain %s always uses the platform's certificate.", d.Hostname)
		}
		if err := associate(tx, app, d, sni); err != nil {
			return err
		}
		d.UpdatedAt = p.now()
		if err := tx.UpdateDomain(d); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventDomains, AppID: app.ID, AppName: app.Name, Time: d.UpdatedAt})
		return nil
	})
	return d, err
}

// associate points d at the app's SNI endpoint named (or with id) sni, or
// at none when sni is nil or empty.
func associate(tx *store.Tx, app *App, d *Domain, sni *string) error {
	d.SNIEndpointID, d.SNIEndpointName = nil, nil
	if sni == nil || *sni == "" {
		return nil
	}
	e, err := tx.SNIEndpoint(app.ID, *sni)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(KindInvalid, "Couldn't find the SNI endpoint %s on this app.", *sni)
	} else if err != nil {
		return err
	}
	d.SNIEndpointID, d.SNIEndpointName = &e.ID, &e.Name
	return nil
}

// DeleteDomain removes a custom domain from an app. The default domain
// cannot be removed.
func (p *Platform) DeleteDomain(ctx context.Context, actor *Account, ident, domain string) (*Domain, error) {
	var d *Domain
	var app *App
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		app, d, err = p.appDomain(tx, actor, ident, domain)
		if err != nil {
			return err
		}
		if IsDefault(d) {
			return errorf(KindInvalid, "The default domain %s cannot be removed.", d.Hostname)
		}
		if err := tx.DeleteDomain(app.ID, d.ID); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventDomains, AppID: app.ID, AppName: app.Name, Time: p.now()})
		return nil
	})
	return d, err
}

// Hostnames returns every app's custom domain hostnames (wildcards such as
// "*.example.com" included), keyed by app id, for the router's table. An
// app's default hostname is not listed: it is DefaultHostname(app name).
// EventDomains on the bus says when to ask again.
func (p *Platform) Hostnames(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	err := p.read(ctx, func(tx *store.Tx) error {
		ds, err := tx.Domains("")
		for _, d := range ds {
			out[d.AppID] = append(out[d.AppID], d.Hostname)
		}
		return err
	})
	return out, err
}
