package store

import (
	"database/sql"
	"time"
)

// Domain is an app's custom hostname.
type Domain struct {
	ID              string
	AppID           string
	AppName         string
	Hostname        string
	CNAME           string
	Status          string
	ACMStatus       *string
	ACMStatusReason *string
	SNIEndpointID   *string
	SNIEndpointName *string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// SNIEndpoint is a certificate chain and key uploaded for an app.
type SNIEndpoint struct {
	ID               string
	AppID            string
	AppName          string
	Name             string
	CertificateChain string
	PrivateKey       string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ACMECert is the certificate ACME issued for one custom domain.
type ACMECert struct {
	DomainID         string
	Hostname         string
	CertificateChain string
	PrivateKey       string
	NotAfter         time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ACMEAccount is the account key registered with one ACME directory.
type ACMEAccount struct {
	Directory  string
	PrivateKey string
	URI        string
	CreatedAt  time.Time
}

// ---- domains ----

const domainSelect = `SELECT d.id, d.app_id, a.name, d.hostname, d.cname, d.status, d.acm_status, d.acm_status_reason,
	d.sni_endpoint_id, s.name, d.created_at, d.updated_at
	FROM domains d JOIN apps a ON a.id = d.app_id LEFT JOIN sni_endpoints s ON s.id = d.sni_endpoint_id`

func scanDomain(s interface{ Scan(...any) error }) (*Domain, error) {
	var d Domain
	var acm, reason, sniID, sniName sql.NullString
	var created, updated string
	if err := s.Scan(&d.ID, &d.AppID, &d.AppName, &d.Hostname, &d.CNAME, &d.Status, &acm, &reason, &sniID, &sniName,
		&created, &updated); err != nil {
		return nil, notFound(err)
	}
	d.ACMStatus, d.ACMStatusReason = nullString(acm), nullString(reason)
	d.SNIEndpointID, d.SNIEndpointName = nullString(sniID), nullString(sniName)
	d.CreatedAt, d.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &d, nil
}

func nullString(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

// CreateDomain inserts d; its hostname (and cname) must be unused.
func (tx *Tx) CreateDomain(d *Domain) error {
	_, err := tx.exec(`INSERT INTO domains (id, app_id, hostname, cname, status, acm_status, acm_status_reason, sni_endpoint_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, d.ID, d.AppID, d.Hostname, d.CNAME, d.Status, d.ACMStatus, d.ACMStatusReason,
		d.SNIEndpointID, Time(d.CreatedAt), Time(d.UpdatedAt))
	if isUnique(err) {
		return ErrConflict
	}
	return err
}

// UpdateDomain writes d's status, ACM status and SNI endpoint.
func (tx *Tx) UpdateDomain(d *Domain) error {
	return affected(tx.exec(`UPDATE domains SET status = ?, acm_status = ?, acm_status_reason = ?, sni_endpoint_id = ?, updated_at = ?
		WHERE id = ?`, d.Status, d.ACMStatus, d.ACMStatusReason, d.SNIEndpointID, Time(d.UpdatedAt), d.ID))
}

// DeleteDomain removes one of an app's domains.
func (tx *Tx) DeleteDomain(appID, id string) error {
	return affected(tx.exec(`DELETE FROM domains WHERE app_id = ? AND id = ?`, appID, id))
}

// DomainByHostname finds a domain of any app by hostname.
func (tx *Tx) DomainByHostname(hostname string) (*Domain, error) {
	return scanDomain(tx.queryRow(domainSelect+` WHERE d.hostname = ?`, hostname))
}

// DomainByID finds a domain of any app by id.
func (tx *Tx) DomainByID(id string) (*Domain, error) {
	return scanDomain(tx.queryRow(domainSelect+` WHERE d.id = ?`, id))
}

// CNAMETaken reports whether a domain already has cname as its DNS target.
func (tx *Tx) CNAMETaken(cname string) (bool, error) {
	var n int
	err := tx.queryRow(`SELECT count(*) FROM domains WHERE cname = ?`, cname).Scan(&n)
	return n > 0, err
}

// Domains lists an app's custom domains by hostname; every app's when
// appID is empty.
func (tx *Tx) Domains(appID string) ([]*Domain, error) {
	q, args := domainSelect+` ORDER BY d.hostname`, []any(nil)
	if appID != "" {
		q, args = domainSelect+` WHERE d.app_id = ? ORDER BY d.hostname`, []any{appID}
	}
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDomain)
}

// DomainCount returns how many custom domains an app has.
func (tx *Tx) DomainCount(appID string) (int, error) {
	var n int
	err := tx.queryRow(`SELECT count(*) FROM domains WHERE app_id = ?`, appID).Scan(&n)
	return n, err
}

// ---- SNI endpoints ----

const sniSelect = `SELECT s.id, s.app_id, a.name, s.name, s.certificate_chain, s.private_key, s.created_at, s.updated_at
	FROM sni_endpoints s JOIN apps a ON a.id = s.app_id`

func scanSNIEndpoint(s interface{ Scan(...any) error }) (*SNIEndpoint, error) {
	var e SNIEndpoint
	var created, updated string
	if err := s.Scan(&e.ID, &e.AppID, &e.AppName, &e.Name, &e.CertificateChain, &e.PrivateKey, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	e.CreatedAt, e.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &e, nil
}

// CreateSNIEndpoint inserts e; its name must be unused.
func (tx *Tx) CreateSNIEndpoint(e *SNIEndpoint) error {
	_, err := tx.exec(`INSERT INTO sni_endpoints (id, app_id, name, certificate_chain, private_key, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.ID, e.AppID, e.Name, e.CertificateChain, e.PrivateKey, Time(e.CreatedAt), Time(e.UpdatedAt))
	if isUnique(err) {
		return ErrConflict
	}
	return err
}

// UpdateSNIEndpoint replaces e's chain and key.
func (tx *Tx) UpdateSNIEndpoint(e *SNIEndpoint) error {
	return affected(tx.exec(`UPDATE sni_endpoints SET certificate_chain = ?, private_key = ?, updated_at = ? WHERE id = ?`,
		e.CertificateChain, e.PrivateKey, Time(e.UpdatedAt), e.ID))
}

// DeleteSNIEndpoint removes one of an app's SNI endpoints; its domains
// lose their association.
func (tx *Tx) DeleteSNIEndpoint(appID, id string) error {
	return affected(tx.exec(`DELETE FROM sni_endpoints WHERE app_id = ? AND id = ?`, appID, id))
}

// SNIEndpoint finds one of an app's endpoints by id or name.
func (tx *Tx) SNIEndpoint(appID, ident string) (*SNIEndpoint, error) {
	return scanSNIEndpoint(tx.queryRow(sniSelect+` WHERE s.app_id = ? AND (s.id = ? OR s.name = ?)`, appID, ident, ident))
}

// SNINameTaken reports whether any endpoint is called name.
func (tx *Tx) SNINameTaken(name string) (bool, error) {
	var n int
	err := tx.queryRow(`SELECT count(*) FROM sni_endpoints WHERE name = ?`, name).Scan(&n)
	return n > 0, err
}

// SNIEndpoints lists an app's endpoints, oldest first; every app's when
// appID is empty.
func (tx *Tx) SNIEndpoints(appID string) ([]*SNIEndpoint, error) {
	q, args := sniSelect+` ORDER BY s.created_at, s.id`, []any(nil)
	if appID != "" {
		q, args = sniSelect+` WHERE s.app_id = ? ORDER BY s.created_at, s.id`, []any{appID}
	}
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSNIEndpoint)
}

// ---- ACME ----

const acmeCertCols = `domain_id, hostname, certificate_chain, private_key, not_after, created_at, updated_at`

func scanACMECert(s interface{ Scan(...any) error }) (*ACMECert, error) {
	var c ACMECert
	var notAfter, created, updated string
	if err := s.Scan(&c.DomainID, &c.Hostname, &c.CertificateChain, &c.PrivateKey, &notAfter, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	c.NotAfter, c.CreatedAt, c.UpdatedAt = ParseTime(notAfter), ParseTime(created), ParseTime(updated)
	return &c, nil
}

// PutACMECert stores (or replaces) a domain's ACME certificate.
func (tx *Tx) PutACMECert(c *ACMECert) error {
	_, err := tx.exec(`INSERT INTO acme_certs (`+acmeCertCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (domain_id) DO UPDATE SET hostname = excluded.hostname, certificate_chain = excluded.certificate_chain,
		private_key = excluded.private_key, not_after = excluded.not_after, updated_at = excluded.updated_at`,
		c.DomainID, c.Hostname, c.CertificateChain, c.PrivateKey, Time(c.NotAfter), Time(c.CreatedAt), Time(c.UpdatedAt))
	return err
}

// ACMECerts lists every stored ACME certificate.
func (tx *Tx) ACMECerts() ([]*ACMECert, error) {
	rows, err := tx.query(`SELECT ` + acmeCertCols + ` FROM acme_certs ORDER BY hostname`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanACMECert)
}

// DeleteAppACMECerts removes the ACME certificates of an app's domains.
func (tx *Tx) DeleteAppACMECerts(appID string) error {
	_, err := tx.exec(`DELETE FROM acme_certs WHERE domain_id IN (SELECT id FROM domains WHERE app_id = ?)`, appID)
	return err
}

// ACMEAccount returns the account registered with directory.
func (tx *Tx) ACMEAccount(directory string) (*ACMEAccount, error) {
	var a ACMEAccount
	var created string
	err := tx.queryRow(`SELECT directory, private_key, uri, created_at FROM acme_accounts WHERE directory = ?`, directory).
		Scan(&a.Directory, &a.PrivateKey, &a.URI, &created)
	if err != nil {
		return nil, notFound(err)
	}
	a.CreatedAt = ParseTime(created)
	return &a, nil
}

// PutACMEAccount stores the account registered with a directory.
func (tx *Tx) PutACMEAccount(a *ACMEAccount) error {
	_, err := tx.exec(`INSERT INTO acme_accounts (directory, private_key, uri, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (directory) DO UPDATE SET private_key = excluded.private_key, uri = excluded.uri`,
		a.Directory, a.PrivateKey, a.URI, Time(a.CreatedAt))
	return err
}
