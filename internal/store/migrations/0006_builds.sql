-- Builds from source (git push, POST /apps/{app}/builds) and the base
-- images (stacks) Dockerfiles may name in FROM.

CREATE TABLE builds (
	id              TEXT PRIMARY KEY,
	app_id          TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	status          TEXT NOT NULL, -- pending, succeeded, failed
	source_url      TEXT NOT NULL DEFAULT '',
	source_version  TEXT NOT NULL DEFAULT '',
	source_checksum TEXT NOT NULL DEFAULT '',
	-- stream_key is the secret in output_stream_url, which carries no token.
	stream_key      TEXT NOT NULL UNIQUE,
	user_id         TEXT NOT NULL,
	user_email      TEXT NOT NULL,
	release_id      TEXT NOT NULL DEFAULT '',
	error           TEXT NOT NULL DEFAULT '',
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL
);
CREATE INDEX builds_app ON builds(app_id, created_at);

CREATE TABLE build_stacks (
	name       TEXT PRIMARY KEY,
	image      TEXT NOT NULL, -- config digest in the image store
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
