package platform

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/skiffhq/skiff/internal/store"
)

// SNIEndpoint is a certificate uploaded for an app, served by SNI.
type SNIEndpoint = store.SNIEndpoint

// Certificate is what a parsed, validated certificate chain says.
type Certificate struct {
	Leaf       *x509.Certificate
	Chain      []*x509.Certificate
	Domains    []string // the leaf's DNS names (its common name if it has none)
	CASigned   bool     // the chain verifies against the system's roots
	SelfSigned bool
}

// ParseCertificate reads a PEM certificate chain (leaf first, then its
// intermediates, each issuing the one before) and its PEM private key,
// checking every rule Heroku checks before accepting an upload: both
// parse, the key matches the leaf, the chain is in order, the leaf is
// valid now and names at least one host.
func ParseCertificate(chainPEM, keyPEM string, now time.Time) (*Certificate, error) {
	if strings.TrimSpace(chainPEM) == "" {
		return nil, errorf(KindInvalid, "certificate_chain is required: the PEM certificate, followed by any intermediate certificates.")
	}
	if strings.TrimSpace(keyPEM) == "" {
		return nil, errorf(KindInvalid, "private_key is required: the PEM private key of the certificate.")
	}
	var chain []*x509.Certificate
	rest := []byte(chainPEM)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, errorf(KindInvalid, "certificate_chain holds a %s PEM block; it must hold only CERTIFICATE blocks (send the private key as private_key).", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errorf(KindInvalid, "certificate %d of certificate_chain does not parse: %v.", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errorf(KindInvalid, "certificate_chain holds no PEM certificate (expected -----BEGIN CERTIFICATE-----).")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errorf(KindInvalid, "certificate_chain has text after its last PEM certificate that is not a certificate.")
	}
	kb, krest := pem.Decode([]byte(keyPEM))
	if kb == nil || len(bytes.TrimSpace(krest)) > 0 {
		return nil, errorf(KindInvalid, "private_key must be exactly one PEM private key (-----BEGIN PRIVATE KEY-----).")
	}
	if !strings.HasSuffix(kb.Type, "PRIVATE KEY") {
		return nil, errorf(KindInvalid, "private_key holds a %s PEM block, not a private key.", kb.Type)
	}
	if kb.Type == "ENCRYPTED PRIVATE KEY" || kb.Headers["Proc-Type"] != "" {
		return nil, errorf(KindInvalid, "private_key is encrypted; remove its pass phrase first (openssl pkey -in key.pem -out plain.pem).")
	}
	if _, err := tls.X509KeyPair([]byte(chainPEM), []byte(keyPEM)); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "does not match") {
			return nil, errorf(KindInvalid, "private_key does not match the first certificate of certificate_chain.")
		}
		return nil, errorf(KindInvalid, "private_key does not parse: %s.", strings.TrimPrefix(msg, "tls: "))
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return nil, errorf(KindInvalid, "certificate_chain is out of order: certificate %d (%s) was not issued by certificate %d (%s); put the server certificate first, then each issuer.",
				i+1, chain[i].Subject.CommonName, i+2, chain[i+1].Subject.CommonName)
		}
	}
	leaf := chain[0]
	if now.After(leaf.NotAfter) {
		return nil, errorf(KindInvalid, "The certificate expired on %s.", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, errorf(KindInvalid, "The certificate is not valid before %s.", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	c := &Certificate{Leaf: leaf, Chain: chain, Domains: certDomains(leaf)}
	if len(c.Domains) == 0 {
		return nil, errorf(KindInvalid, "The certificate names no host (no DNS subject alternative name or common name).")
	}
	c.SelfSigned = bytes.Equal(leaf.RawIssuer, leaf.RawSubject) && leaf.CheckSignatureFrom(leaf) == nil
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Intermediates: inter, CurrentTime: now})
	c.CASigned = err == nil
	return c, nil
}

func certDomains(leaf *x509.Certificate) []string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames
	}
	if cn := leaf.Subject.CommonName; cn != "" && strings.Contains(cn, ".") {
		return []string{strings.ToLower(cn)}
	}
	return nil
}

// sniName returns a Heroku-style endpoint name such as "harbor-48213".
func sniName() string {
	return fmt.Sprintf("%s-%05d", nouns[rand.IntN(len(nouns))], rand.IntN(100000))
}

// SNIEndpoints lists an app's SNI endpoints and, for each (by id), the
// custom domains it serves.
func (p *Platform) SNIEndpoints(ctx context.Context, actor *Account, ident string) ([]*SNIEndpoint, map[string][]*Domain, error) {
	var es []*SNIEndpoint
	var served map[string][]*Domain
	err := p.read(ctx, func(tx *store.Tx) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		if es, err = tx.SNIEndpoints(app.ID); err != nil {
			return err
		}
		served, err = domainsByEndpoint(tx, app.ID)
		return err
	})
	return es, served, err
}

func domainsByEndpoint(tx *store.Tx, appID string) (map[string][]*Domain, error) {
	ds, err := tx.Domains(appID)
	m := map[string][]*Domain{}
	for _, d := range ds {
		if d.SNIEndpointID != nil {
			m[*d.SNIEndpointID] = append(m[*d.SNIEndpointID], d)
		}
	}
	return m, err
}

// SNIEndpoint returns one of an app's SNI endpoints by id or name, with
// the domains it serves.
func (p *Platform) SNIEndpoint(ctx context.Context, actor *Account, ident, endpoint string) (*SNIEndpoint, []*Domain, error) {
	var e *SNIEndpoint
	var served map[string][]*Domain
	err := p.read(ctx, func(tx *store.Tx) error {
		app, ep, err := appSNI(tx, actor, ident, endpoint)
		if err != nil {
			return err
		}
		e = ep
		served, err = domainsByEndpoint(tx, app.ID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return e, served[e.ID], nil
}

// appSNI resolves an app the actor may use and one of its SNI endpoints.
func appSNI(tx *store.Tx, actor *Account, ident, endpoint string) (*App, *SNIEndpoint, error) {
	app, err := access(tx, actor, ident)
	if err != nil {
		return nil, nil, err
	}
	e, err := tx.SNIEndpoint(app.ID, endpoint)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errorf(KindNotFound, "Couldn't find that SNI endpoint.")
	}
	return app, e, err
}

// CreateSNIEndpoint validates and stores an uploaded certificate chain and
// key for an app.
func (p *Platform) CreateSNIEndpoint(ctx context.Context, actor *Account, ident, chain, key string) (*SNIEndpoint, error) {
	var e *SNIEndpoint
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		now := p.now()
		if _, err := ParseCertificate(chain, key, now); err != nil {
			return err
		}
		e = &SNIEndpoint{ID: newID(), AppID: app.ID, AppName: app.Name, CertificateChain: chain, PrivateKey: key, CreatedAt: now, UpdatedAt: now}
		for i := 0; ; i++ {
			e.Name = sniName()
			taken, err := tx.SNINameTaken(e.Name)
			if err != nil {
				return err
			}
			if !taken {
				break
			}
			if i > 50 {
				return errors.New("no free SNI endpoint name after 50 tries")
			}
		}
		if err := tx.CreateSNIEndpoint(e); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventDomains, AppID: app.ID, AppName: app.Name, Time: now})
		return nil
	})
	return e, err
}

// UpdateSNIEndpoint replaces an endpoint's certificate chain and key; the
// domains it serves keep it.
func (p *Platform) UpdateSNIEndpoint(ctx context.Context, actor *Account, ident, endpoint, chain, key string) (*SNIEndpoint, []*Domain, error) {
	var e *SNIEndpoint
	var app *App
	var served map[string][]*Domain
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		if app, e, err = appSNI(tx, actor, ident, endpoint); err != nil {
			return err
		}
		if _, err := ParseCertificate(chain, key, p.now()); err != nil {
			return err
		}
		e.CertificateChain, e.PrivateKey, e.UpdatedAt = chain, key, p.now()
		if err := tx.UpdateSNIEndpoint(e); err != nil {
			return err
		}
		if served, err = domainsByEndpoint(tx, app.ID); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventDomains, AppID: app.ID, AppName: app.Name, Time: e.UpdatedAt})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return e, served[e.ID], nil
}

// DeleteSNIEndpoint removes an endpoint; the domains it served fall back
// to an ACM certificate or the platform's.
func (p *Platform) DeleteSNIEndpoint(ctx context.Context, actor *Account, ident, endpoint string) (*SNIEndpoint, error) {
	var e *SNIEndpoint
	var app *App
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		if app, e, err = appSNI(tx, actor, ident, endpoint); err != nil {
			return err
		}
		if err := tx.DeleteSNIEndpoint(app.ID, e.ID); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventDomains, AppID: app.ID, AppName: app.Name, Time: p.now()})
		return nil
	})
	return e, err
}
