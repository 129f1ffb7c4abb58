package platform

import (
	"context"
	"errors"

	"github.com/skiffhq/skiff/internal/store"
)

// ACMECert is the certificate ACME issued for one custom domain.
type ACMECert = store.ACMECert

// ACMEAccount is the key registered with an ACME directory.
type ACMEAccount = store.ACMEAccount

// SetACM turns Automated Certificate Management on or off for an app.
// Turning it on queues every custom domain without a certificate
// (acm_status "pending"); turning it off clears the statuses and drops the
// app's ACME certificates, as Heroku does.
func (p *Platform) SetACM(ctx context.Context, actor *Account, ident string, on bool) (*App, error) {
	var app *App
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		now := p.now()
		app.ACM, app.UpdatedAt = on, now
		if err := tx.UpdateApp(app); err != nil {
			return err
		}
		if !on {
			if err := tx.DeleteAppACMECerts(app.ID); err != nil {
				return err
			}
		}
		ds, err := tx.Domains(app.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if on && d.ACMStatus != nil && *d.ACMStatus == ACMCertIssued {
				continue
			}
			d.ACMStatus, d.ACMStatusReason, d.UpdatedAt = nil, nil, now
			if on {
				s := ACMPending
				d.ACMStatus = &s
			}
			if err := tx.UpdateDomain(d); err != nil {
				return err
			}
		}
		*ev = append(*ev, Event{Kind: EventDomains, AppID: app.ID, AppName: app.Name, Time: now})
		return nil
	})
	return app, err
}

// RefreshACM queues again the app's domains whose validation failed
// (`heroku certs:auto:refresh`).
func (p *Platform) RefreshACM(ctx context.Context, actor *Account, ident string) (*App, error) {
	var app *App
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		if !app.ACM {
			return errorf(KindInvalid, "Automated Certificate Management is not enabled on %s; enable it with heroku certs:auto:enable.", app.Name)
		}
		ds, err := tx.Domains(app.ID)
		if err != nil {
			return err
		}
		now := p.now()
		for _, d := range ds {
			if d.ACMStatus != nil && *d.ACMStatus == ACMCertIssued {
				continue
			}
			s := ACMPending
			d.ACMStatus, d.ACMStatusReason, d.UpdatedAt = &s, nil, now
			if err := tx.UpdateDomain(d); err != nil {
				return err
			}
		}
		*ev = append(*ev, Event{Kind: EventDomains, AppID: app.ID, AppName: app.Name, Time: now})
		return nil
	})
	return app, err
}

// ACMDomains lists the custom domains of every app with ACM on, for the
// certificate manager's loop.
func (p *Platform) ACMDomains(ctx context.Context) ([]*Domain, error) {
	var out []*Domain
	err := p.read(ctx, func(tx *store.Tx) error {
		apps, err := tx.AllApps()
		if err != nil {
			return err
		}
		for _, a := range apps {
			if !a.ACM {
				continue
			}
			ds, err := tx.Domains(a.ID)
			if err != nil {
				return err
			}
			out = append(out, ds...)
		}
		return nil
	})
	return out, err
}

// SetACMStatus records where a domain's certificate stands. A domain
// removed meanwhile, or whose app turned ACM off, is left alone.
func (p *Platform) SetACMStatus(ctx context.Context, domainID, status string, reason *string) error {
	return p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		d, err := tx.DomainByID(domainID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if app, err := tx.AppByID(d.AppID); err != nil || !app.ACM {
			return err
		}
		d.ACMStatus, d.ACMStatusReason, d.UpdatedAt = &status, reason, p.now()
		return tx.UpdateDomain(d)
	})
}

// PutACMECert stores a domain's newly issued certificate and marks the
// domain "cert issued". It reports false, storing nothing, when the domain
// is gone or its app turned ACM off while the order ran.
func (p *Platform) PutACMECert(ctx context.Context, c *ACMECert) (bool, error) {
	stored := false
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		d, err := tx.DomainByID(c.DomainID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		app, err := tx.AppByID(d.AppID)
		if err != nil || !app.ACM {
			return err
		}
		now := p.now()
		c.Hostname, c.CreatedAt, c.UpdatedAt = d.Hostname, now, now
		if err := tx.PutACMECert(c); err != nil {
			return err
		}
		s := ACMCertIssued
		d.ACMStatus, d.ACMStatusReason, d.UpdatedAt = &s, nil, now
		if err := tx.UpdateDomain(d); err != nil {
			return err
		}
		stored = true
		*ev = append(*ev, Event{Kind: EventDomains, AppID: app.ID, AppName: app.Name, Time: now})
		return nil
	})
	return stored, err
}

// CertificateSet is every certificate the router may serve, with which
// hostnames each is meant for.
type CertificateSet struct {
	Domains      []*Domain      // every custom domain, with its SNI endpoint id
	SNIEndpoints []*SNIEndpoint // every uploaded certificate
	ACME         []*ACMECert    // every ACME certificate
}

// Certificates reads the whole CertificateSet in one snapshot.
func (p *Platform) Certificates(ctx context.Context) (*CertificateSet, error) {
	s := &CertificateSet{}
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		if s.Domains, err = tx.Domains(""); err != nil {
			return err
		}
		if s.SNIEndpoints, err = tx.SNIEndpoints(""); err != nil {
			return err
		}
		s.ACME, err = tx.ACMECerts()
		return err
	})
	return s, err
}

// ACMEAccount returns the account stored for an ACME directory, or nil.
func (p *Platform) ACMEAccount(ctx context.Context, directory string) (*ACMEAccount, error) {
	var a *ACMEAccount
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		a, err = tx.ACMEAccount(directory)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	return a, err
}

// PutACMEAccount stores the account registered with an ACME directory.
func (p *Platform) PutACMEAccount(ctx context.Context, a *ACMEAccount) error {
	return p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		a.CreatedAt = p.now()
		return tx.PutACMEAccount(a)
	})
}
