// Package store persists Skiff's state: accounts, tokens, apps, releases,
// formation and features. It knows SQL and nothing of the rules that govern
// these records; those live in package platform.
//
// The embedded default is SQLite through a pure-Go driver. Writes go through a
// single connection, so write transactions are serialized in-process and never
// fail with SQLITE_BUSY; reads use a separate pool and run concurrently (WAL).
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

// ErrBadRange is returned when a Page's bounds do not fit its field.
var ErrBadRange = errors.New("invalid range")

// ErrConflict is returned when a write would break a uniqueness rule.
var ErrConflict = errors.New("conflict")

// DB is an open Skiff database.
type DB struct {
	w  *sql.DB   // one connection: all write transactions
	r  *sql.DB   // read-only pool
	rs stmtCache // statements of the read pool
}

// stmtCache keeps one prepared statement per query text. database/sql
// prepares it once per connection and reuses it; without the cache SQLite
// parsed every query of every request again, a third of an API call's CPU.
// Query texts are constants or built from a bounded set of fragments, so
// the cache stays small. Only reads use it: the write pool's one connection
// is held by the transaction that would prepare, and writes wait on fsync
// far longer than on parsing.
type stmtCache struct {
	db *sql.DB
	m  sync.Map // query text -> *sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := c.m.Load(q); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.m.LoadOrStore(q, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// Open opens (creating if needed) the SQLite database at path and applies
// every pending migration.
func Open(path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + abs + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	db := &DB{w: w, r: r}
	db.rs.db = r
	if err := db.migrate(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	db.rs.m.Range(func(_, s any) bool { s.(*sql.Stmt).Close(); return true })
	return errors.Join(db.r.Close(), db.w.Close())
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", base)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = db.Write(ctx, func(tx *Tx) error {
			var n int
			if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, v, base, now())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

// Tx is a transaction. Every multi-row change happens inside one.
type Tx struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts *stmtCache
}

// Write runs fn in a write transaction, committing if fn returns nil.
func (db *DB) Write(ctx context.Context, fn func(*Tx) error) error {
	return run(ctx, db.w, nil, fn)
}

// Read runs fn in a read-only transaction (a consistent snapshot).
func (db *DB) Read(ctx context.Context, fn func(*Tx) error) error {
	return run(ctx, db.r, &db.rs, fn)
}

func run(ctx context.Context, db *sql.DB, c *stmtCache, fn func(*Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(&Tx{ctx: ctx, tx: tx, stmts: c}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (tx *Tx) stmt(q string) (*sql.Stmt, error) {
	s, err := tx.stmts.get(tx.ctx, q)
	if err != nil {
		return nil, err
	}
	return tx.tx.StmtContext(tx.ctx, s), nil
}

func (tx *Tx) query(q string, args ...any) (*sql.Rows, error) {
	if tx.stmts == nil {
		return tx.tx.QueryContext(tx.ctx, q, args...)
	}
	s, err := tx.stmt(q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(tx.ctx, args...)
}

// row is a *sql.Row, or the error of preparing it.
type row struct {
	r   *sql.Row
	err error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.r.Scan(dest...)
}

func (tx *Tx) queryRow(q string, args ...any) row {
	if tx.stmts == nil {
		return row{r: tx.tx.QueryRowContext(tx.ctx, q, args...)}
	}
	s, err := tx.stmt(q)
	if err != nil {
		return row{err: err}
	}
	return row{r: s.QueryRowContext(tx.ctx, args...)}
}

func (tx *Tx) exec(q string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(tx.ctx, q, args...)
}

func now() string { return Time(time.Now()) }

// Time formats t as the store keeps times: fixed width (all nine fractional
// digits), so that the text sorts in time order.
func Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") }

// ParseTime reads a time written by Time.
func ParseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
