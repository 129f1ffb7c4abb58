-- Custom domains, uploaded certificates (SNI endpoints) and the state of
-- Automated Certificate Management: certificates and the ACME account live
-- here, not on a router's disk, so that several routers can share them.

CREATE TABLE sni_endpoints (
	id                TEXT PRIMARY KEY,
	app_id            TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	name              TEXT NOT NULL UNIQUE,
	certificate_chain TEXT NOT NULL, -- PEM, leaf first
	private_key       TEXT NOT NULL, -- PEM
	created_at        TEXT NOT NULL,
	updated_at        TEXT NOT NULL
);
CREATE INDEX sni_endpoints_app ON sni_endpoints(app_id);

-- The default <app>.<base domain> entry is not stored: it follows the app's
-- name. Only custom domains are rows.
CREATE TABLE domains (
	id                TEXT PRIMARY KEY,
	app_id            TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	hostname          TEXT NOT NULL UNIQUE,
	cname             TEXT NOT NULL UNIQUE,
	status            TEXT NOT NULL,
	acm_status        TEXT,
	acm_status_reason TEXT,
	sni_endpoint_id   TEXT REFERENCES sni_endpoints(id) ON DELETE SET NULL,
	created_at        TEXT NOT NULL,
	updated_at        TEXT NOT NULL
);
CREATE INDEX domains_app ON domains(app_id);

-- ACME-issued certificates, one per custom domain.
CREATE TABLE acme_certs (
	domain_id         TEXT PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,
	hostname          TEXT NOT NULL,
	certificate_chain TEXT NOT NULL,
	private_key       TEXT NOT NULL,
	not_after         TEXT NOT NULL,
	created_at        TEXT NOT NULL,
	updated_at        TEXT NOT NULL
);

-- ACME accounts, one per directory URL.
CREATE TABLE acme_accounts (
	directory   TEXT PRIMARY KEY,
	private_key TEXT NOT NULL,
	uri         TEXT NOT NULL,
	created_at  TEXT NOT NULL
);
