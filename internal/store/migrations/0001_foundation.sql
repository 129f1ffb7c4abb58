-- Accounts, their API tokens, apps, collaborators, releases, formation and features.
-- Times are RFC 3339 UTC text so that SQLite and PostgreSQL read them alike.

CREATE TABLE accounts (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL DEFAULT '',
	admin         INTEGER NOT NULL DEFAULT 0,
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL
);

-- Tokens are stored as the SHA-256 of the secret; the secret itself is never kept.
CREATE TABLE tokens (
	id          TEXT PRIMARY KEY,
	account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	hash        TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	expires_at  TEXT,
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL
);
CREATE INDEX tokens_account ON tokens(account_id);

CREATE TABLE apps (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	owner_id     TEXT NOT NULL REFERENCES accounts(id),
	stack        TEXT NOT NULL,
	build_stack  TEXT NOT NULL,
	maintenance  INTEGER NOT NULL DEFAULT 0,
	acm          INTEGER NOT NULL DEFAULT 0,
	-- last_version is the release version counter: bumped in the same
	-- transaction that inserts the release, so versions never repeat or skip.
	last_version INTEGER NOT NULL DEFAULT 0,
	created_at   TEXT NOT NULL,
	updated_at   TEXT NOT NULL
);

CREATE TABLE collaborators (
	id         TEXT NOT NULL UNIQUE,
	app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	role       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (app_id, account_id)
);
CREATE INDEX collaborators_account ON collaborators(account_id);

CREATE TABLE releases (
	id          TEXT PRIMARY KEY,
	app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	version     INTEGER NOT NULL,
	description TEXT NOT NULL,
	status      TEXT NOT NULL,
	user_id     TEXT NOT NULL,
	user_email  TEXT NOT NULL,
	config      TEXT NOT NULL, -- JSON object: the release's complete config vars
	processes   TEXT NOT NULL, -- JSON object: type -> {command, image}
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	UNIQUE (app_id, version)
);

CREATE TABLE formations (
	id         TEXT PRIMARY KEY,
	app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	type       TEXT NOT NULL,
	quantity   INTEGER NOT NULL,
	size       TEXT NOT NULL,
	command    TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	UNIQUE (app_id, type)
);

CREATE TABLE app_features (
	app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	enabled    INTEGER NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (app_id, name)
);
