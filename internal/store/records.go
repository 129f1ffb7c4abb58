package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Account is a person (or robot) who owns apps and holds tokens.
type Account struct {
	ID           string
	Email        string
	PasswordHash string
	Admin        bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Token is an API token; only its hash is stored.
type Token struct {
	ID          string
	AccountID   string
	Hash        string
	Description string
	ExpiresAt   *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// App is an application and its settings.
type App struct {
	ID          string
	Name        string
	OwnerID     string
	OwnerEmail  string
	Stack       string
	BuildStack  string
	Maintenance bool
	ACM         bool
	LastVersion int
	ReleasedAt  *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Collaborator is an account's access to an app.
type Collaborator struct {
	ID        string
	AppID     string
	AccountID string
	Email     string
	Role      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Process is what a release runs for one process type.
type Process struct {
	Command string `json:"command,omitempty"`
	Image   string `json:"image,omitempty"`
}

// Release is one numbered, immutable version of an app's code and config.
type Release struct {
	ID          string
	AppID       string
	Version     int
	Description string
	Status      string
	UserID      string
	UserEmail   string
	Config      map[string]string
	Processes   map[string]Process
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Formation is the desired quantity and size of one process type.
type Formation struct {
	ID        string
	AppID     string
	Type      string
	Quantity  int
	Size      string
	Command   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Feature is an app feature flag's stored state.
type Feature struct {
	AppID     string
	Name      string
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Page selects a window of an ordered list; it is what Heroku's Range header
// says. Field must already be validated by the caller against the list's
// sortable fields.
type Page struct {
	Field          string
	Start          string
	StartExclusive bool
	End            string
	Max            int
	Desc           bool
}

// clause returns the WHERE fragment, its arguments and the ORDER/LIMIT tail
// for a page over column col. It asks for one row more than Max so the
// caller learns whether more remain.
func (p Page) clause(col string, numeric bool) (where string, args []any, tail string, err error) {
	val := func(s string) (any, error) {
		if !numeric {
			return s, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%w: bound %q is not a number", ErrBadRange, s)
		}
		return n, nil
	}
	after, before, dir := ">", "<=", "ASC"
	if p.Desc {
		after, before, dir = "<", ">=", "DESC"
	}
	if p.Start != "" {
		op := after + "="
		if p.StartExclusive {
			op = after
		}
		v, err := val(p.Start)
		if err != nil {
			return "", nil, "", err
		}
		where += " AND " + col + " " + op + " ?"
		args = append(args, v)
	}
	if p.End != "" {
		v, err := val(p.End)
		if err != nil {
			return "", nil, "", err
		}
		where += " AND " + col + " " + before + " ?"
		args = append(args, v)
	}
	tail = fmt.Sprintf(" ORDER BY %s %s LIMIT ?", col, dir)
	return where, append(args, p.Max+1), tail, nil
}

// ---- accounts and tokens ----

const accountCols = `id, email, password_hash, admin, created_at, updated_at`

func scanAccount(s interface{ Scan(...any) error }) (*Account, error) {
	var a Account
	var created, updated string
	if err := s.Scan(&a.ID, &a.Email, &a.PasswordHash, &a.Admin, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	a.CreatedAt, a.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &a, nil
}

// CreateAccount inserts a; its email must be unused.
func (tx *Tx) CreateAccount(a *Account) error {
	_, err := tx.exec(`INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, a.Email, a.PasswordHash, a.Admin, Time(a.CreatedAt), Time(a.UpdatedAt))
	if isUnique(err) {
		return ErrConflict
	}
	return err
}

// AccountCount returns how many accounts exist.
func (tx *Tx) AccountCount() (int, error) {
	var n int
	err := tx.queryRow(`SELECT count(*) FROM accounts`).Scan(&n)
	return n, err
}

// AccountByEmail looks an account up by its email.
func (tx *Tx) AccountByEmail(email string) (*Account, error) {
	return scanAccount(tx.queryRow(`SELECT `+accountCols+` FROM accounts WHERE email = ?`, email))
}

// AccountByID looks an account up by its id.
func (tx *Tx) AccountByID(id string) (*Account, error) {
	return scanAccount(tx.queryRow(`SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
}

// CreateToken inserts t.
func (tx *Tx) CreateToken(t *Token) error {
	_, err := tx.exec(`INSERT INTO tokens (id, account_id, hash, description, expires_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, t.ID, t.AccountID, t.Hash, t.Description, timePtr(t.ExpiresAt), Time(t.CreatedAt), Time(t.UpdatedAt))
	return err
}

const tokenCols = `id, account_id, hash, description, expires_at, created_at, updated_at`

func scanToken(s interface{ Scan(...any) error }) (*Token, error) {
	var t Token
	var exp sql.NullString
	var created, updated string
	if err := s.Scan(&t.ID, &t.AccountID, &t.Hash, &t.Description, &exp, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	if exp.Valid {
		e := ParseTime(exp.String)
		t.ExpiresAt = &e
	}
	t.CreatedAt, t.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &t, nil
}

// TokenByHash finds the token with the given hash.
func (tx *Tx) TokenByHash(hash string) (*Token, error) {
	return scanToken(tx.queryRow(`SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash))
}

// Tokens lists an account's tokens, oldest first.
func (tx *Tx) Tokens(accountID string) ([]*Token, error) {
	rows, err := tx.query(`SELECT `+tokenCols+` FROM tokens WHERE account_id = ? ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanToken)
}

// DeleteToken removes one of an account's tokens.
func (tx *Tx) DeleteToken(accountID, id string) error {
	return affected(tx.exec(`DELETE FROM tokens WHERE account_id = ? AND id = ?`, accountID, id))
}

// ---- apps ----

const appSelect = `SELECT a.id, a.name, a.owner_id, o.email, a.stack, a.build_stack, a.maintenance, a.acm, a.last_version,
	(SELECT r.created_at FROM releases r WHERE r.app_id = a.id ORDER BY r.version DESC LIMIT 1),
	a.created_at, a.updated_at
	FROM apps a JOIN accounts o ON o.id = a.owner_id`

func scanApp(s interface{ Scan(...any) error }) (*App, error) {
	var a App
	var released sql.NullString
	var created, updated string
	if err := s.Scan(&a.ID, &a.Name, &a.OwnerID, &a.OwnerEmail, &a.Stack, &a.BuildStack, &a.Maintenance, &a.ACM,
		&a.LastVersion, &released, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	if released.Valid {
		t := ParseTime(released.String)
		a.ReleasedAt = &t
	}
	a.CreatedAt, a.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &a, nil
}

// CreateApp inserts a; its name must be unused.
func (tx *Tx) CreateApp(a *App) error {
	_, err := tx.exec(`INSERT INTO apps (id, name, owner_id, stack, build_stack, maintenance, acm, last_version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`, a.ID, a.Name, a.OwnerID, a.Stack, a.BuildStack, a.Maintenance, a.ACM, Time(a.CreatedAt), Time(a.UpdatedAt))
	if isUnique(err) {
		return ErrConflict
	}
	return err
}

// AppByName looks an app up by name.
func (tx *Tx) AppByName(name string) (*App, error) {
	return scanApp(tx.queryRow(appSelect+` WHERE a.name = ?`, name))
}

// AppByID looks an app up by id.
func (tx *Tx) AppByID(id string) (*App, error) {
	return scanApp(tx.queryRow(appSelect+` WHERE a.id = ?`, id))
}

// AppNameTaken reports whether an app already has name.
func (tx *Tx) AppNameTaken(name string) (bool, error) {
	var n int
	err := tx.queryRow(`SELECT count(*) FROM apps WHERE name = ?`, name).Scan(&n)
	return n > 0, err
}

var appPageCols = map[string]string{"id": "a.id", "name": "a.name", "updated_at": "a.updated_at"}

// Apps lists the apps accountID can access (all apps when accountID is
// empty), one page at a time. more reports whether rows remain past the page.
func (tx *Tx) Apps(accountID string, p Page) (apps []*App, more bool, err error) {
	col, ok := appPageCols[p.Field]
	if !ok {
		return nil, false, fmt.Errorf("apps cannot be ordered by %q", p.Field)
	}
	where, args, tail, err := p.clause(col, false)
	if err != nil {
		return nil, false, err
	}
	q := appSelect + ` WHERE 1=1`
	if accountID != "" {
		q += ` AND a.id IN (SELECT app_id FROM collaborators WHERE account_id = ?)`
		args = append([]any{accountID}, args...)
	}
	rows, err := tx.query(q+where+tail, args...)
	if err != nil {
		return nil, false, err
	}
	apps, err = collect(rows, scanApp)
	if len(apps) > p.Max {
		return apps[:p.Max], true, err
	}
	return apps, false, err
}

// UpdateApp writes a's name, stacks, maintenance and acm flags.
func (tx *Tx) UpdateApp(a *App) error {
	res, err := tx.exec(`UPDATE apps SET name = ?, stack = ?, build_stack = ?, maintenance = ?, acm = ?, updated_at = ? WHERE id = ?`,
		a.Name, a.Stack, a.BuildStack, a.Maintenance, a.ACM, Time(a.UpdatedAt), a.ID)
	if isUnique(err) {
		return ErrConflict
	}
	return affected(res, err)
}

// DeleteApp removes an app and, by cascade, everything that belongs to it.
func (tx *Tx) DeleteApp(id string) error {
	return affected(tx.exec(`DELETE FROM apps WHERE id = ?`, id))
}

// NextVersion allocates the app's next release version. The row update
// holds the app's write lock until the transaction ends, so concurrent
// releases of one app get consecutive versions and a rolled-back
// transaction gives its number back.
func (tx *Tx) NextVersion(appID string) (int, error) {
	var v int
	err := tx.queryRow(`UPDATE apps SET last_version = last_version + 1 WHERE id = ? RETURNING last_version`, appID).Scan(&v)
	return v, notFound(err)
}

// ---- collaborators ----

// AddCollaborator gives an account access to an app.
func (tx *Tx) AddCollaborator(c *Collaborator) error {
	_, err := tx.exec(`INSERT INTO collaborators (id, app_id, account_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		c.ID, c.AppID, c.AccountID, c.Role, Time(c.CreatedAt), Time(c.UpdatedAt))
	if isUnique(err) {
		return ErrConflict
	}
	return err
}

// Collaborator returns accountID's access to appID.
func (tx *Tx) Collaborator(appID, accountID string) (*Collaborator, error) {
	rows, err := tx.query(collabSelect+` WHERE c.app_id = ? AND c.account_id = ?`, appID, accountID)
	if err != nil {
		return nil, err
	}
	cs, err := collect(rows, scanCollaborator)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, ErrNotFound
	}
	return cs[0], nil
}

// Collaborators lists who can access an app.
func (tx *Tx) Collaborators(appID string) ([]*Collaborator, error) {
	rows, err := tx.query(collabSelect+` WHERE c.app_id = ? ORDER BY c.created_at, c.id`, appID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanCollaborator)
}

const collabSelect = `SELECT c.id, c.app_id, c.account_id, a.email, c.role, c.created_at, c.updated_at
	FROM collaborators c JOIN accounts a ON a.id = c.account_id`

func scanCollaborator(s interface{ Scan(...any) error }) (*Collaborator, error) {
	var c Collaborator
	var created, updated string
	if err := s.Scan(&c.ID, &c.AppID, &c.AccountID, &c.Email, &c.Role, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	c.CreatedAt, c.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &c, nil
}

// ---- releases ----

const releaseCols = `id, app_id, version, description, status, user_id, user_email, config, processes, created_at, updated_at`

// releaseListCols reads releases without their config: a list never shows
// config vars, and decoding thousands of them dominated listing. Config is
// left empty in the results.
const releaseListCols = `id, app_id, version, description, status, user_id, user_email, '{}', processes, created_at, updated_at`

func scanRelease(s interface{ Scan(...any) error }) (*Release, error) {
	var r Release
	var config, procs, created, updated string
	if err := s.Scan(&r.ID, &r.AppID, &r.Version, &r.Description, &r.Status, &r.UserID, &r.UserEmail,
		&config, &procs, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	if err := json.Unmarshal([]byte(config), &r.Config); err != nil {
		return nil, fmt.Errorf("release %s config: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(procs), &r.Processes); err != nil {
		return nil, fmt.Errorf("release %s processes: %w", r.ID, err)
	}
	if r.Config == nil {
		r.Config = map[string]string{}
	}
	if r.Processes == nil {
		r.Processes = map[string]Process{}
	}
	r.CreatedAt, r.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &r, nil
}

// CreateRelease inserts r. Its version must come from NextVersion in the
// same transaction.
func (tx *Tx) CreateRelease(r *Release) error {
	config, err := json.Marshal(r.Config)
	if err != nil {
		return err
	}
	procs, err := json.Marshal(r.Processes)
	if err != nil {
		return err
	}
	_, err = tx.exec(`INSERT INTO releases (`+releaseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.AppID, r.Version, r.Description, r.Status, r.UserID, r.UserEmail, string(config), string(procs),
		Time(r.CreatedAt), Time(r.UpdatedAt))
	if isUnique(err) {
		return ErrConflict
	}
	return err
}

// ReleaseByVersion returns an app's release by version number.
func (tx *Tx) ReleaseByVersion(appID string, version int) (*Release, error) {
	return scanRelease(tx.queryRow(`SELECT `+releaseCols+` FROM releases WHERE app_id = ? AND version = ?`, appID, version))
}

// ReleaseByID returns an app's release by id.
func (tx *Tx) ReleaseByID(appID, id string) (*Release, error) {
	return scanRelease(tx.queryRow(`SELECT `+releaseCols+` FROM releases WHERE app_id = ? AND id = ?`, appID, id))
}

// CurrentRelease returns the app's newest succeeded release: the one whose
// code and config its dynos run.
func (tx *Tx) CurrentRelease(appID string) (*Release, error) {
	return scanRelease(tx.queryRow(`SELECT `+releaseCols+` FROM releases
		WHERE app_id = ? AND status = 'succeeded' ORDER BY version DESC LIMIT 1`, appID))
}

var releasePageCols = map[string]bool{"id": false, "version": true}

// Releases lists an app's releases one page at a time, without their
// config vars (see ReleaseByVersion for a release's config).
func (tx *Tx) Releases(appID string, p Page) (rs []*Release, more bool, err error) {
	numeric, ok := releasePageCols[p.Field]
	if !ok {
		return nil, false, fmt.Errorf("releases cannot be ordered by %q", p.Field)
	}
	where, args, tail, err := p.clause(p.Field, numeric)
	if err != nil {
		return nil, false, err
	}
	rows, err := tx.query(`SELECT `+releaseListCols+` FROM releases WHERE app_id = ?`+where+tail, append([]any{appID}, args...)...)
	if err != nil {
		return nil, false, err
	}
	rs, err = collect(rows, scanRelease)
	if len(rs) > p.Max {
		return rs[:p.Max], true, err
	}
	return rs, false, err
}

// ---- formation ----

const formationCols = `id, app_id, type, quantity, size, command, created_at, updated_at`

func scanFormation(s interface{ Scan(...any) error }) (*Formation, error) {
	var f Formation
	var created, updated string
	if err := s.Scan(&f.ID, &f.AppID, &f.Type, &f.Quantity, &f.Size, &f.Command, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	f.CreatedAt, f.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &f, nil
}

// Formations lists an app's process types, ordered by type.
func (tx *Tx) Formations(appID string) ([]*Formation, error) {
	rows, err := tx.query(`SELECT `+formationCols+` FROM formations WHERE app_id = ? ORDER BY type`, appID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanFormation)
}

// PutFormation inserts or updates f (keyed by app and type).
func (tx *Tx) PutFormation(f *Formation) error {
	_, err := tx.exec(`INSERT INTO formations (`+formationCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (app_id, type) DO UPDATE SET quantity = excluded.quantity, size = excluded.size,
		command = excluded.command, updated_at = excluded.updated_at`,
		f.ID, f.AppID, f.Type, f.Quantity, f.Size, f.Command, Time(f.CreatedAt), Time(f.UpdatedAt))
	return err
}

// ---- features ----

// Features returns the stored feature states of an app by name.
func (tx *Tx) Features(appID string) (map[string]*Feature, error) {
	rows, err := tx.query(`SELECT app_id, name, enabled, created_at, updated_at FROM app_features WHERE app_id = ?`, appID)
	if err != nil {
		return nil, err
	}
	fs, err := collect(rows, func(s interface{ Scan(...any) error }) (*Feature, error) {
		var f Feature
		var created, updated string
		if err := s.Scan(&f.AppID, &f.Name, &f.Enabled, &created, &updated); err != nil {
			return nil, err
		}
		f.CreatedAt, f.UpdatedAt = ParseTime(created), ParseTime(updated)
		return &f, nil
	})
	m := make(map[string]*Feature, len(fs))
	for _, f := range fs {
		m[f.Name] = f
	}
	return m, err
}

// PutFeature stores a feature's state.
func (tx *Tx) PutFeature(f *Feature) error {
	_, err := tx.exec(`INSERT INTO app_features (app_id, name, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (app_id, name) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at`,
		f.AppID, f.Name, f.Enabled, Time(f.CreatedAt), Time(f.UpdatedAt))
	return err
}

// ---- helpers ----

func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (*T, error)) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func timePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return Time(*t)
}

// AllApps lists every app, for the platform's own loops (not for users).
func (tx *Tx) AllApps() ([]*App, error) {
	rows, err := tx.query(appSelect + ` ORDER BY a.name`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanApp)
}

// SetReleaseStatus changes a release's status (a pending release becomes
// succeeded or failed).
func (tx *Tx) SetReleaseStatus(appID, id, status string, at time.Time) error {
	return affected(tx.exec(`UPDATE releases SET status = ?, updated_at = ? WHERE app_id = ? AND id = ?`, status, Time(at), appID, id))
}

// LatestRelease returns an app's newest release, whatever its status.
func (tx *Tx) LatestRelease(appID string) (*Release, error) {
	return scanRelease(tx.queryRow(`SELECT `+releaseCols+` FROM releases WHERE app_id = ? ORDER BY version DESC LIMIT 1`, appID))
}
