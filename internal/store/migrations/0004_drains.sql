-- Log drains: where an app's log lines are delivered (syslog or HTTPS).
-- token is the drain's public name (d.<uuid>), written into every delivered
-- line; url may hold a receiver's credentials (basic auth), like Heroku's.
CREATE TABLE log_drains (
	id         TEXT PRIMARY KEY,
	app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	url        TEXT NOT NULL,
	token      TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	UNIQUE (app_id, url)
);
CREATE INDEX log_drains_app ON log_drains(app_id);
