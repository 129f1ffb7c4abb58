package store

import (
	"fmt"
	"time"
)

// Build is one build of an app from source.
type Build struct {
	ID             string
	AppID          string
	Status         string // pending, succeeded, failed
	SourceURL      string
	SourceVersion  string
	SourceChecksum string
	StreamKey      string
	UserID         string
	UserEmail      string
	ReleaseID      string
	Error          string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Stack is a base image Dockerfiles can name in FROM.
type Stack struct {
	Name      string
	Image     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

const buildCols = `id, app_id, status, source_url, source_version, source_checksum, stream_key, user_id, user_email,
	release_id, error, created_at, updated_at`

func scanBuild(s interface{ Scan(...any) error }) (*Build, error) {
	var b Build
	var created, updated string
	if err := s.Scan(&b.ID, &b.AppID, &b.Status, &b.SourceURL, &b.SourceVersion, &b.SourceChecksum, &b.StreamKey,
		&b.UserID, &b.UserEmail, &b.ReleaseID, &b.Error, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	b.CreatedAt, b.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &b, nil
}

// CreateBuild inserts b.
func (tx *Tx) CreateBuild(b *Build) error {
	_, err := tx.exec(`INSERT INTO builds (`+buildCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.AppID, b.Status, b.SourceURL, b.SourceVersion, b.SourceChecksum, b.StreamKey, b.UserID, b.UserEmail,
		b.ReleaseID, b.Error, Time(b.CreatedAt), Time(b.UpdatedAt))
	if isUnique(err) {
		return ErrConflict
	}
	return err
}

// FinishBuild records a build's outcome.
func (tx *Tx) FinishBuild(appID, id, status, releaseID, errMsg, checksum string, at time.Time) error {
	return affected(tx.exec(`UPDATE builds SET status = ?, release_id = ?, error = ?, source_checksum = ?, updated_at = ?
		WHERE app_id = ? AND id = ?`, status, releaseID, errMsg, checksum, Time(at), appID, id))
}

// BuildByID returns an app's build.
func (tx *Tx) BuildByID(appID, id string) (*Build, error) {
	return scanBuild(tx.queryRow(`SELECT `+buildCols+` FROM builds WHERE app_id = ? AND id = ?`, appID, id))
}

// BuildByStreamKey returns the build whose output_stream_url has key.
func (tx *Tx) BuildByStreamKey(key string) (*Build, error) {
	return scanBuild(tx.queryRow(`SELECT `+buildCols+` FROM builds WHERE stream_key = ?`, key))
}

// LatestBuild returns the app's newest build with the given status.
func (tx *Tx) LatestBuild(appID, status string) (*Build, error) {
	return scanBuild(tx.queryRow(`SELECT `+buildCols+` FROM builds WHERE app_id = ? AND status = ?
		ORDER BY created_at DESC LIMIT 1`, appID, status))
}

var buildPageCols = map[string]string{"id": "id", "started_at": "created_at", "created_at": "created_at"}

// Builds lists an app's builds one page at a time.
func (tx *Tx) Builds(appID string, p Page) (bs []*Build, more bool, err error) {
	col, ok := buildPageCols[p.Field]
	if !ok {
		return nil, false, fmt.Errorf("builds cannot be ordered by %q", p.Field)
	}
	where, args, tail, err := p.clause(col, false)
	if err != nil {
		return nil, false, err
	}
	rows, err := tx.query(`SELECT `+buildCols+` FROM builds WHERE app_id = ?`+where+tail, append([]any{appID}, args...)...)
	if err != nil {
		return nil, false, err
	}
	bs, err = collect(rows, scanBuild)
	if len(bs) > p.Max {
		return bs[:p.Max], true, err
	}
	return bs, false, err
}

// FailPendingBuilds marks every pending build failed with msg: at start-up,
// the builds a stopped server was running.
func (tx *Tx) FailPendingBuilds(msg string, at time.Time) error {
	_, err := tx.exec(`UPDATE builds SET status = 'failed', error = ?, updated_at = ? WHERE status = 'pending'`, msg, Time(at))
	return err
}

// PutStack creates or replaces a stack.
func (tx *Tx) PutStack(s *Stack) error {
	_, err := tx.exec(`INSERT INTO build_stacks (name, image, created_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET image = excluded.image, updated_at = excluded.updated_at`,
		s.Name, s.Image, Time(s.CreatedAt), Time(s.UpdatedAt))
	return err
}

// StackByName returns a stack.
func (tx *Tx) StackByName(name string) (*Stack, error) {
	s, err := scanStack(tx.queryRow(`SELECT name, image, created_at, updated_at FROM build_stacks WHERE name = ?`, name))
	return s, notFound(err)
}

// Stacks lists every stack.
func (tx *Tx) Stacks() ([]*Stack, error) {
	rows, err := tx.query(`SELECT name, image, created_at, updated_at FROM build_stacks ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanStack)
}

func scanStack(s interface{ Scan(...any) error }) (*Stack, error) {
	var st Stack
	var created, updated string
	if err := s.Scan(&st.Name, &st.Image, &created, &updated); err != nil {
		return nil, err
	}
	st.CreatedAt, st.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &st, nil
}

// AllBuildIDs lists the ids of every build of every app, for the sweep of
// the build logs of destroyed apps.
func (tx *Tx) AllBuildIDs() (map[string]bool, error) {
	rows, err := tx.query(`SELECT id FROM builds`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}
