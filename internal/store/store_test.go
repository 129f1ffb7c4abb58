package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func openDB(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "skiff.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

var t0 = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

// seed creates an account and an app owned by it.
func seed(t *testing.T, db *DB, appName string) (*Account, *App) {
	t.Helper()
	acct := &Account{ID: uuid.NewString(), Email: appName + "@example.com", CreatedAt: t0, UpdatedAt: t0}
	app := &App{ID: uuid.NewString(), Name: appName, OwnerID: acct.ID, Stack: "container", BuildStack: "container", CreatedAt: t0, UpdatedAt: t0}
	err := db.Write(context.Background(), func(tx *Tx) error {
		if err := tx.CreateAccount(acct); err != nil {
			return err
		}
		if err := tx.CreateApp(app); err != nil {
			return err
		}
		return tx.AddCollaborator(&Collaborator{ID: uuid.NewString(), AppID: app.ID, AccountID: acct.ID, Role: "owner", CreatedAt: t0, UpdatedAt: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	return acct, app
}

func newRelease(tx *Tx, app *App, desc string) (*Release, error) {
	v, err := tx.NextVersion(app.ID)
	if err != nil {
		return nil, err
	}
	r := &Release{ID: uuid.NewString(), AppID: app.ID, Version: v, Description: desc, Status: "succeeded",
		UserID: app.OwnerID, UserEmail: "x@example.com", Config: map[string]string{"V": strconv.Itoa(v)},
		Processes: map[string]Process{"web": {Image: "sha256:x"}}, CreatedAt: t0, UpdatedAt: t0}
	return r, tx.CreateRelease(r)
}

func addReleases(t *testing.T, db *DB, app *App, n int) {
	t.Helper()
	err := db.Write(context.Background(), func(tx *Tx) error {
		for i := range n {
			if _, err := newRelease(tx, app, fmt.Sprint("r", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	t.Parallel()
	db, path := openDB(t)
	_, app := seed(t, db, "persist")
	addReleases(t, db, app, 3)
	db.Close()

	for range 2 {
		db2, err := Open(path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		var n, versions int
		err = db2.Read(context.Background(), func(tx *Tx) error {
			if err := tx.tx.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
				return err
			}
			rs, _, err := tx.Releases(app.ID, Page{Field: "version", Max: 10})
			versions = len(rs)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		names, _ := migrations.ReadDir("migrations")
		if n != len(names) {
			t.Errorf("schema_migrations has %d rows, want %d", n, len(names))
		}
		if versions != 3 {
			t.Errorf("data lost on reopen: %d releases", versions)
		}
		db2.Close()
	}
	// Two handles on one file at once also work (migrations see each other).
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
}

func TestTimeFormatSortsChronologically(t *testing.T) {
	t.Parallel()
	var times []time.Time
	for _, d := range []time.Duration{0, 1, 10, 100 * time.Microsecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, time.Second + 1, time.Minute} {
		times = append(times, t0.Add(d))
	}
	var texts []string
	for _, tm := range times {
		s := Time(tm)
		if !ParseTime(s).Equal(tm) {
			t.Errorf("ParseTime(Time(%v)) = %v", tm, ParseTime(s))
		}
		texts = append(texts, s)
	}
	if !sort.StringsAreSorted(texts) {
		t.Errorf("times do not sort as text: %q", texts)
	}
	// Non-UTC times are stored in UTC.
	loc := time.FixedZone("X", 3*3600)
	if s := Time(t0.In(loc)); s != Time(t0) {
		t.Errorf("Time in another zone = %q, want %q", s, Time(t0))
	}
	// Times written by the earlier RFC 3339 format still read.
	if got := ParseTime("2026-02-03T04:05:06.5Z"); !got.Equal(t0.Add(500 * time.Millisecond)) {
		t.Errorf("ParseTime of a short fraction = %v", got)
	}
}

func TestPageClause(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		p       Page
		numeric bool
		where   string
		args    []any
		tail    string // LIMIT is the last argument: max+1
	}{
		{"all", Page{Max: 200}, false, "", []any{201}, " ORDER BY c ASC LIMIT ?"},
		{"desc", Page{Max: 10, Desc: true}, true, "", []any{11}, " ORDER BY c DESC LIMIT ?"},
		{"start", Page{Start: "b", Max: 2}, false, " AND c >= ?", []any{"b", 3}, " ORDER BY c ASC LIMIT ?"},
		{"start exclusive", Page{Start: "b", StartExclusive: true, Max: 2}, false, " AND c > ?", []any{"b", 3}, " ORDER BY c ASC LIMIT ?"},
		{"start and end", Page{Start: "3", End: "9", Max: 2}, true, " AND c >= ? AND c <= ?", []any{3, 9, 3}, " ORDER BY c ASC LIMIT ?"},
		{"desc start exclusive", Page{Start: "12", StartExclusive: true, Max: 5, Desc: true}, true, " AND c < ?", []any{12, 6}, " ORDER BY c DESC LIMIT ?"},
		{"desc start and end", Page{Start: "12", End: "3", Max: 5, Desc: true}, true, " AND c <= ? AND c >= ?", []any{12, 3, 6}, " ORDER BY c DESC LIMIT ?"},
		{"end only", Page{End: "zz", Max: 1}, false, " AND c <= ?", []any{"zz", 2}, " ORDER BY c ASC LIMIT ?"},
		{"text numbers stay text", Page{Start: "10", Max: 1}, false, " AND c >= ?", []any{"10", 2}, " ORDER BY c ASC LIMIT ?"},
	} {
		where, args, tail, err := tc.p.clause("c", tc.numeric)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if where != tc.where || !reflect.DeepEqual(args, tc.args) || tail != tc.tail {
			t.Errorf("%s: clause = %q %v %q, want %q %v %q", tc.name, where, args, tail, tc.where, tc.args, tc.tail)
		}
	}
	for _, p := range []Page{{Start: "x", Max: 1}, {End: "v3", Max: 1}, {Start: "1", End: "1.5", Max: 1}} {
		if _, _, _, err := p.clause("c", true); err == nil {
			t.Errorf("clause(%+v) on a numeric column: no error", p)
		}
	}
}

func TestReleasesPaging(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	_, app := seed(t, db, "pages")
	_, other := seed(t, db, "other")
	addReleases(t, db, app, 12)
	addReleases(t, db, other, 4)
	ctx := context.Background()

	list := func(p Page) ([]string, bool) {
		t.Helper()
		var rs []*Release
		var more bool
		if err := db.Read(ctx, func(tx *Tx) error {
			var err error
			rs, more, err = tx.Releases(app.ID, p)
			return err
		}); err != nil {
			t.Fatalf("Releases(%+v): %v", p, err)
		}
		var vs []string
		for _, r := range rs {
			if r.AppID != app.ID {
				t.Errorf("release of another app listed")
			}
			vs = append(vs, strconv.Itoa(r.Version))
		}
		return vs, more
	}
	for _, tc := range []struct {
		p    Page
		want []string
		more bool
	}{
		{Page{Field: "version", Max: 200}, vs(1, 12), false},
		{Page{Field: "version", Max: 12}, vs(1, 12), false},
		{Page{Field: "version", Max: 11}, vs(1, 11), true},
		{Page{Field: "version", Max: 5, Desc: true}, vs(12, 8), true},
		{Page{Field: "version", Max: 5, Desc: true, Start: "8", StartExclusive: true}, vs(7, 3), true},
		{Page{Field: "version", Max: 5, Desc: true, Start: "3", StartExclusive: true}, vs(2, 1), false},
		{Page{Field: "version", Max: 5, Start: "10"}, vs(10, 12), false},
		{Page{Field: "version", Max: 2, Start: "9", End: "11"}, vs(9, 10), true},
		{Page{Field: "version", Max: 3, Start: "9", End: "11"}, vs(9, 11), false},
		{Page{Field: "version", Max: 3, Start: "12", StartExclusive: true}, nil, false},
		{Page{Field: "version", Max: 3, Start: "2", End: "10"}, vs(2, 4), true}, // "10" compares as a number, not text
	} {
		got, more := list(tc.p)
		if !slices.Equal(got, tc.want) || more != tc.more {
			t.Errorf("Releases(%+v) = %v more=%v, want %v more=%v", tc.p, got, more, tc.want, tc.more)
		}
	}
	// By id: following the pages visits every release once, in id order.
	var ids []string
	p := Page{Field: "id", Max: 5}
	for {
		var rs []*Release
		var more bool
		if err := db.Read(ctx, func(tx *Tx) error {
			var err error
			rs, more, err = tx.Releases(app.ID, p)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		if !more {
			break
		}
		p.Start, p.StartExclusive = rs[len(rs)-1].ID, true
	}
	if len(ids) != 12 || !sort.StringsAreSorted(ids) || len(slices.Compact(slices.Clone(ids))) != 12 {
		t.Errorf("id pages = %v", ids)
	}
	if err := db.Read(ctx, func(tx *Tx) error {
		_, _, err := tx.Releases(app.ID, Page{Field: "description", Max: 5})
		return err
	}); err == nil {
		t.Errorf("paging by an unknown field: no error")
	}
}

func vs(from, to int) []string {
	var out []string
	step := 1
	if from > to {
		step = -1
	}
	for v := from; ; v += step {
		out = append(out, strconv.Itoa(v))
		if v == to {
			return out
		}
	}
}

func TestAppsPaging(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	acct, _ := seed(t, db, "zeta")
	ctx := context.Background()
	names := []string{"alpha", "beta", "gamma", "delta"}
	if err := db.Write(ctx, func(tx *Tx) error {
		for i, n := range names {
			tm := t0.Add(time.Duration(i) * 100 * time.Millisecond)
			app := &App{ID: uuid.NewString(), Name: n, OwnerID: acct.ID, Stack: "container", BuildStack: "container", CreatedAt: tm, UpdatedAt: tm}
			if err := tx.CreateApp(app); err != nil {
				return err
			}
			if err := tx.AddCollaborator(&Collaborator{ID: uuid.NewString(), AppID: app.ID, AccountID: acct.ID, Role: "owner", CreatedAt: tm, UpdatedAt: tm}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	seed(t, db, "invisible") // another account's app
	list := func(accountID string, p Page) []string {
		t.Helper()
		var out []string
		if err := db.Read(ctx, func(tx *Tx) error {
			apps, _, err := tx.Apps(accountID, p)
			for _, a := range apps {
				out = append(out, a.Name)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list(acct.ID, Page{Field: "name", Max: 10}); !slices.Equal(got, []string{"alpha", "beta", "delta", "gamma", "zeta"}) {
		t.Errorf("by name = %v", got)
	}
	if got := list(acct.ID, Page{Field: "name", Max: 2, Start: "beta", StartExclusive: true}); !slices.Equal(got, []string{"delta", "gamma"}) {
		t.Errorf("after beta = %v", got)
	}
	// zeta was created at t0 like alpha; order by updated_at follows time.
	if got := list(acct.ID, Page{Field: "updated_at", Max: 10, Desc: true}); !slices.Equal(got[:3], []string{"delta", "gamma", "beta"}) {
		t.Errorf("by updated_at desc = %v", got)
	}
	if got := list("", Page{Field: "name", Max: 10}); len(got) != 6 {
		t.Errorf("all apps = %v", got)
	}
	if err := db.Read(ctx, func(tx *Tx) error { _, _, err := tx.Apps(acct.ID, Page{Field: "owner_id", Max: 1}); return err }); err == nil {
		t.Errorf("apps by an unknown field: no error")
	}
}

// TestNextVersionGivesBackOnRollback: a transaction that allocates a
// version and then fails gives the number back, so versions have no gaps.
func TestNextVersionGivesBackOnRollback(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	_, app := seed(t, db, "gapless")
	ctx := context.Background()
	addReleases(t, db, app, 2)

	boom := errors.New("boom")
	var allocated int
	err := db.Write(ctx, func(tx *Tx) error {
		r, err := newRelease(tx, app, "doomed")
		if err != nil {
			return err
		}
		allocated = r.Version
		return boom
	})
	if !errors.Is(err, boom) || allocated != 3 {
		t.Fatalf("failed write = %v, allocated v%d", err, allocated)
	}
	// A second failure mode, a constraint violation
	// inside the transaction, also rolls the counter back.
	err = db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.NextVersion(app.ID); err != nil {
			return err
		}
		dup := &Release{ID: uuid.NewString(), AppID: app.ID, Version: 1, Description: "dup", Status: "succeeded", CreatedAt: t0, UpdatedAt: t0}
		return tx.CreateRelease(dup)
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate version: %v, want ErrConflict", err)
	}
	var next *Release
	if err := db.Write(ctx, func(tx *Tx) error {
		var err error
		next, err = newRelease(tx, app, "kept")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if next.Version != 3 {
		t.Errorf("next version after failed transactions = %d, want 3 (no gap)", next.Version)
	}
	err = db.Read(ctx, func(tx *Tx) error {
		a, err := tx.AppByID(app.ID)
		if err != nil {
			return err
		}
		if a.LastVersion != 3 {
			t.Errorf("last_version = %d, want 3", a.LastVersion)
		}
		if _, err := tx.ReleaseByVersion(app.ID, 4); !errors.Is(err, ErrNotFound) {
			t.Errorf("v4 exists: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *Tx) error { _, err := tx.NextVersion(uuid.NewString()); return err }); !errors.Is(err, ErrNotFound) {
		t.Errorf("NextVersion of a missing app = %v, want ErrNotFound", err)
	}
}

// TestNextVersionConcurrent allocates versions from many goroutines: each
// write transaction gets the next number, none twice, none skipped.
func TestNextVersionConcurrent(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	_, app := seed(t, db, "parallel")
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int]int{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v int
			err := db.Write(ctx, func(tx *Tx) error {
				r, err := newRelease(tx, app, "c")
				if err != nil {
					return err
				}
				v = r.Version
				if i%4 == 0 {
					return errors.New("fail every fourth")
				}
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				got[v]++
			}
		}()
	}
	wg.Wait()
	if len(got) != n-n/4 {
		t.Errorf("%d committed versions, want %d", len(got), n-n/4)
	}
	for v := 1; v <= n-n/4; v++ {
		if got[v] != 1 {
			t.Errorf("version %d committed %d times", v, got[v])
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	acct, app := seed(t, db, "records")
	ctx := context.Background()
	exp := t0.Add(time.Hour)
	tok := &Token{ID: uuid.NewString(), AccountID: acct.ID, Hash: "h1", Description: "d", ExpiresAt: &exp, CreatedAt: t0, UpdatedAt: t0}
	err := db.Write(ctx, func(tx *Tx) error {
		if err := tx.CreateToken(tok); err != nil {
			return err
		}
		r, err := newRelease(tx, app, "Deploy abc")
		if err != nil {
			return err
		}
		if err := tx.PutFormation(&Formation{ID: uuid.NewString(), AppID: app.ID, Type: "web", Quantity: 1, Size: "Standard-1X", CreatedAt: t0, UpdatedAt: t0}); err != nil {
			return err
		}
		// Upsert keeps the id and creation time.
		if err := tx.PutFormation(&Formation{ID: uuid.NewString(), AppID: app.ID, Type: "web", Quantity: 3, Size: "Standard-2X", CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)}); err != nil {
			return err
		}
		if err := tx.PutFeature(&Feature{AppID: app.ID, Name: "preboot", Enabled: true, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			return err
		}
		got, err := tx.ReleaseByID(app.ID, r.ID)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("ReleaseByID = %+v, %v; want %+v", got, err, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Read(ctx, func(tx *Tx) error {
		got, err := tx.TokenByHash("h1")
		if err != nil || got.ID != tok.ID || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) {
			t.Errorf("TokenByHash = %+v, %v", got, err)
		}
		if _, err := tx.TokenByHash("h2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing token: %v", err)
		}
		fs, err := tx.Formations(app.ID)
		if err != nil || len(fs) != 1 || fs[0].Quantity != 3 || fs[0].Size != "Standard-2X" || !fs[0].CreatedAt.Equal(t0) {
			t.Errorf("formation = %+v, %v", fs, err)
		}
		a, err := tx.AppByName("records")
		if err != nil || a.OwnerEmail != acct.Email || a.LastVersion != 1 || a.ReleasedAt == nil || !a.CreatedAt.Equal(t0) {
			t.Errorf("AppByName = %+v, %v", a, err)
		}
		if _, err := tx.AppByName("nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing app: %v", err)
		}
		if _, err := tx.AccountByEmail("nobody@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing account: %v", err)
		}
		if taken, err := tx.AppNameTaken("records"); err != nil || !taken {
			t.Errorf("AppNameTaken = %v, %v", taken, err)
		}
		cur, err := tx.CurrentRelease(app.ID)
		if err != nil || cur.Version != 1 {
			t.Errorf("CurrentRelease = %+v, %v", cur, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Uniqueness rules map to ErrConflict.
	for name, fn := range map[string]func(tx *Tx) error{
		"account email": func(tx *Tx) error {
			return tx.CreateAccount(&Account{ID: uuid.NewString(), Email: acct.Email, CreatedAt: t0, UpdatedAt: t0})
		},
		"app name": func(tx *Tx) error {
			return tx.CreateApp(&App{ID: uuid.NewString(), Name: "records", OwnerID: acct.ID, Stack: "c", BuildStack: "c", CreatedAt: t0, UpdatedAt: t0})
		},
		"collaborator": func(tx *Tx) error {
			return tx.AddCollaborator(&Collaborator{ID: uuid.NewString(), AppID: app.ID, AccountID: acct.ID, Role: "owner", CreatedAt: t0, UpdatedAt: t0})
		},
		"rename onto a taken name": func(tx *Tx) error {
			_, other := seedTx(tx, "taken-name")
			other.Name = "records"
			return tx.UpdateApp(other)
		},
	} {
		if err := db.Write(ctx, fn); !errors.Is(err, ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	if err := db.Write(ctx, func(tx *Tx) error { return tx.DeleteToken(acct.ID, uuid.NewString()) }); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteToken of a missing token: %v", err)
	}
	if err := db.Write(ctx, func(tx *Tx) error { return tx.DeleteApp(uuid.NewString()) }); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteApp of a missing app: %v", err)
	}
}

func seedTx(tx *Tx, name string) (*Account, *App) {
	acct := &Account{ID: uuid.NewString(), Email: name + "@example.com", CreatedAt: t0, UpdatedAt: t0}
	app := &App{ID: uuid.NewString(), Name: name, OwnerID: acct.ID, Stack: "c", BuildStack: "c", CreatedAt: t0, UpdatedAt: t0}
	if err := tx.CreateAccount(acct); err != nil {
		panic(err)
	}
	if err := tx.CreateApp(app); err != nil {
		panic(err)
	}
	return acct, app
}

func TestDeleteAppCascades(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	_, app := seed(t, db, "cascade")
	_, keep := seed(t, db, "keep")
	addReleases(t, db, app, 3)
	addReleases(t, db, keep, 2)
	ctx := context.Background()
	if err := db.Write(ctx, func(tx *Tx) error {
		for _, a := range []*App{app, keep} {
			if err := tx.PutFormation(&Formation{ID: uuid.NewString(), AppID: a.ID, Type: "web", Quantity: 1, Size: "Standard-1X", CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
			if err := tx.PutFeature(&Feature{AppID: a.ID, Name: "preboot", Enabled: true, CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
		}
		return tx.DeleteApp(app.ID)
	}); err != nil {
		t.Fatal(err)
	}
	counts := func(appID string) []int {
		var out []int
		for _, tbl := range []string{"releases", "formations", "app_features", "collaborators"} {
			var n int
			if err := db.r.QueryRow(`SELECT count(*) FROM `+tbl+` WHERE app_id = ?`, appID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out
	}
	if got := counts(app.ID); !slices.Equal(got, []int{0, 0, 0, 0}) {
		t.Errorf("rows left after delete (releases, formations, features, collaborators) = %v", got)
	}
	if got := counts(keep.ID); !slices.Equal(got, []int{2, 1, 1, 1}) {
		t.Errorf("the other app lost rows: %v", got)
	}
}

func TestReadIsReadOnly(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	_, app := seed(t, db, "readonly")
	err := db.Read(context.Background(), func(tx *Tx) error {
		_, err := tx.NextVersion(app.ID)
		return err
	})
	if err == nil {
		t.Errorf("a write inside Read succeeded")
	}
}
