package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/store"
)

func TestParseRange(t *testing.T) {
	t.Parallel()
	def := store.Page{Field: "version", Max: 200}
	for _, tc := range []struct {
		in   string
		want store.Page
	}{
		{"", def},
		{"   ", def},
		{"version ..; order=desc,max=1", store.Page{Field: "version", Max: 1, Desc: true}},
		{"version ..; max=15, order=desc", store.Page{Field: "version", Max: 15, Desc: true}},
		{"version ..; max=10, order=desc", store.Page{Field: "version", Max: 10, Desc: true}},
		{"version ..; max=1, order=desc", store.Page{Field: "version", Max: 1, Desc: true}},
		{"id ..; max=1000;", store.Page{Field: "id", Max: 1000}},
		{"id ..; max=5000", store.Page{Field: "id", Max: 1000}},
		{"version ]12..; max=10, order=desc", store.Page{Field: "version", Start: "12", StartExclusive: true, Max: 10, Desc: true}},
		{"version 3..9", store.Page{Field: "version", Start: "3", End: "9", Max: 200}},
		{"version ..9", store.Page{Field: "version", End: "9", Max: 200}},
		{"..; max=3", store.Page{Field: "version", Max: 3}},
		{"id", store.Page{Field: "id", Max: 200}},
		{"version ..; order=asc", def},
		{"version ..;max=7;order=desc;", store.Page{Field: "version", Max: 7, Desc: true}},
		{"  version ..  ;  max = 4 , order = desc ", store.Page{Field: "version", Max: 4, Desc: true}},
	} {
		got, err := parseRange(tc.in, "version", "id")
		if err != nil {
			t.Errorf("parseRange(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseRange(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{
		"name ..", "bogus", "version ..; max=0", "version ..; max=-1", "version ..; max=abc", "version ..; max=",
		"version ..; order=sideways", "version ..; order=", "version ..; color=red", "version 5", "version 5; max=2",
	} {
		if p, err := parseRange(in, "version", "id"); err == nil {
			t.Errorf("parseRange(%q) = %+v, want an error", in, p)
		}
	}
}

func TestNextRangeRoundTrips(t *testing.T) {
	t.Parallel()
	for _, p := range []store.Page{
		{Field: "name", Max: 2},
		{Field: "version", Max: 10, Desc: true},
		{Field: "version", Start: "3", End: "90", Max: 1000},
		{Field: "id", Start: "x", StartExclusive: true, Max: 200, Desc: true},
	} {
		next := nextRange(p, "last-value")
		got, err := parseRange(next, "version", "id", "name")
		if err != nil {
			t.Fatalf("nextRange(%+v) = %q does not parse: %v", p, next, err)
		}
		want := p
		want.Start, want.StartExclusive = "last-value", true
		if got != want {
			t.Errorf("nextRange(%+v) = %q parses as %+v", p, next, got)
		}
	}
	// The form the official CLI was seen echoing.
	if got := nextRange(store.Page{Field: "name", Max: 2}, "plainlogs"); got != "name ]plainlogs..; max=2" {
		t.Errorf("nextRange = %q", got)
	}
}

// addReleases appends n config releases to app in one transaction.
func (e *env) addReleases(appID string, n int) {
	e.t.Helper()
	err := e.db.Write(context.Background(), func(tx *store.Tx) error {
		now := time.Now()
		for i := range n {
			v, err := tx.NextVersion(appID)
			if err != nil {
				return err
			}
			if err := tx.CreateRelease(&store.Release{ID: uuid.NewString(), AppID: appID, Version: v, Description: fmt.Sprintf("Set K%d config vars", i),
				Status: "succeeded", UserID: e.admin.ID, UserEmail: adminEmail, Config: map[string]string{"K": strconv.Itoa(i)}, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

type rangePage struct {
	status    int
	next      string
	keys      []string
	contRange string
}

// follow requests path with Range rng and follows Next-Range as the CLI
// does, checking that every page but the last is a 206 with Next-Range and
// the last a 200 without. It returns each page's keys (field key of each
// item).
func (e *env) follow(t *testing.T, path, token, rng, key string) []rangePage {
	t.Helper()
	var pages []rangePage
	for len(pages) < 3000 {
		r := e.do("GET", path, token, nil, "Range", rng)
		if r.Status != http.StatusOK && r.Status != http.StatusPartialContent {
			t.Fatalf("GET %s Range %q: %s", path, rng, r)
		}
		checkRequestID(t, r)
		var items []map[string]any
		if err := json.Unmarshal(r.Body, &items); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		pg := rangePage{status: r.Status, next: r.Header.Get("Next-Range"), contRange: r.Header.Get("Content-Range")}
		for _, it := range items {
			pg.keys = append(pg.keys, fmt.Sprint(it[key]))
		}
		pages = append(pages, pg)
		if pg.next == "" {
			if pg.status != http.StatusOK {
				t.Errorf("Range %q: last page has status %d without Next-Range, want 200", rng, pg.status)
			}
			return pages
		}
		if pg.status != http.StatusPartialContent {
			t.Errorf("Range %q: page with Next-Range %q has status %d, want 206", rng, pg.next, pg.status)
		}
		if len(items) == 0 {
			t.Fatalf("Range %q: empty page with Next-Range %q", rng, pg.next)
		}
		rng = pg.next // echoed exactly, as the CLI does
	}
	t.Fatalf("Range %q: more than 3000 pages", rng)
	return nil
}

func flatten(pages []rangePage) []string {
	var all []string
	for _, p := range pages {
		all = append(all, p.keys...)
	}
	return all
}

func versions(from, to int) []string {
	var out []string
	if from <= to {
		for v := from; v <= to; v++ {
			out = append(out, strconv.Itoa(v))
		}
	} else {
		for v := from; v >= to; v-- {
			out = append(out, strconv.Itoa(v))
		}
	}
	return out
}

func TestReleaseRanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	app := e.createApp(e.admin.Token, "paged")
	e.addReleases(app.ID, 23) // v1..v25
	other := e.createApp(e.admin.Token, "other-paged")
	e.addReleases(other.ID, 5)

	all := decodeAs[[]releaseJSON](t, e.must(http.StatusOK, "GET", "/apps/paged/releases", e.admin.Token, nil))
	if len(all) != 25 {
		t.Fatalf("%d releases", len(all))
	}
	var ids []string
	for _, r := range all {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	descIDs := slices.Clone(ids)
	slices.Reverse(descIDs)

	for _, tc := range []struct {
		rng       string
		key       string
		first     []string // the first page
		all       []string // every page together
		firstNext bool
	}{
		{"version ..; order=desc,max=1", "version", []string{"25"}, versions(25, 1), true},
		{"version ..; max=15, order=desc", "version", versions(25, 11), versions(25, 1), true},
		{"version ..; max=10, order=desc", "version", versions(25, 16), versions(25, 1), true},
		{"version ..; max=1, order=desc", "version", []string{"25"}, versions(25, 1), true},
		{"version ..; max=25, order=desc", "version", versions(25, 1), versions(25, 1), false},
		{"version ..; max=24", "version", versions(1, 24), versions(1, 25), true},
		{"id ..; max=1000;", "id", ids, ids, false},
		{"id ..; max=4", "id", ids[:4], ids, true},
		{"id ..; max=4, order=desc", "id", descIDs[:4], descIDs, true},
		{emptyHeader, "version", versions(1, 25), versions(1, 25), false},
		{"", "version", versions(1, 25), versions(1, 25), false}, // no header at all
		{"version ..", "version", versions(1, 25), versions(1, 25), false},
		{"version ..; max=7", "version", versions(1, 7), versions(1, 25), true},
		{"version 5..; max=3", "version", versions(5, 7), versions(5, 25), true},
		{"version ]5..10; max=3", "version", versions(6, 8), versions(6, 10), true},
		{"version 20..; max=10, order=desc", "version", versions(20, 11), versions(20, 1), true},
		{"version ]20..3; max=10, order=desc", "version", versions(19, 10), versions(19, 3), true},
		{"version ..; max=10, order=desc", "version", versions(25, 16), versions(25, 1), true},
		{"version ]25..; max=10", "version", nil, nil, false},
	} {
		t.Run(tc.rng, func(t *testing.T) {
			var pages []rangePage
			if tc.rng == "" {
				r := e.must(http.StatusOK, "GET", "/apps/paged/releases", e.admin.Token, nil)
				if r.Header.Get("Next-Range") != "" {
					t.Errorf("Next-Range without a Range header")
				}
				var keys []string
				for _, rel := range decodeAs[[]releaseJSON](t, r) {
					keys = append(keys, strconv.Itoa(rel.Version))
				}
				pages = []rangePage{{status: r.Status, keys: keys}}
			} else {
				pages = e.follow(t, "/apps/paged/releases", e.admin.Token, tc.rng, tc.key)
			}
			if !slices.Equal(pages[0].keys, tc.first) {
				t.Errorf("first page = %v, want %v", pages[0].keys, tc.first)
			}
			if (pages[0].next != "") != tc.firstNext {
				t.Errorf("first page Next-Range = %q, want present=%v", pages[0].next, tc.firstNext)
			}
			if got := flatten(pages); !slices.Equal(got, tc.all) {
				t.Errorf("all pages = %v, want %v", got, tc.all)
			}
		})
	}
	// "Latest" for the CLI is [0] of a desc list of one.
	r := e.must(http.StatusPartialContent, "GET", "/apps/paged/releases", e.admin.Token, nil, "Range", "version ..; order=desc,max=1")
	if rels := decodeAs[[]releaseJSON](t, r); len(rels) != 1 || rels[0].Version != 25 || !rels[0].Current {
		t.Errorf("latest = %+v", rels)
	}
	if got := r.Header.Get("Content-Range"); got != "version 25..25" {
		t.Errorf("Content-Range = %q", got)
	}
	if got := r.Header.Get("Accept-Ranges"); got != "id, version" {
		t.Errorf("Accept-Ranges = %q", got)
	}
}

func TestAppRanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	names := []string{"aaa", "myapp", "myapp-a", "myapp-b", "nnn", "plainlogs", "zzz"}
	for _, n := range names {
		e.createApp(e.admin.Token, n)
	}
	e.createApp(e.bob.Token, "myapp-bob") // never listed for the admin
	desc := slices.Clone(names)
	slices.Reverse(desc)

	// The CLI's verified sequence: name ]myapp..; max=2, then the echo.
	pages := e.follow(t, "/users/~/apps", e.admin.Token, "name ]myapp..; max=2", "name")
	want := [][]string{{"myapp-a", "myapp-b"}, {"nnn", "plainlogs"}, {"zzz"}}
	if len(pages) != len(want) {
		t.Fatalf("pages = %+v", pages)
	}
	for i := range want {
		if !slices.Equal(pages[i].keys, want[i]) {
			t.Errorf("page %d = %v, want %v", i, pages[i].keys, want[i])
		}
	}
	if pages[0].next != "name ]myapp-b..; max=2" || pages[1].next != "name ]plainlogs..; max=2" {
		t.Errorf("Next-Range values = %q, %q", pages[0].next, pages[1].next)
	}
	if pages[0].contRange != "name myapp-a..myapp-b" {
		t.Errorf("Content-Range = %q", pages[0].contRange)
	}

	for _, tc := range []struct {
		rng  string
		want []string
	}{
		{"name ..; max=2", names},
		{"name ..; max=3, order=desc", desc},
		{"name ..; order=desc,max=1", desc},
		{"name ]myapp..myapp-b; max=1", []string{"myapp-a", "myapp-b"}},
		{"name ..; max=1000", names},
		{"name ..", names},
	} {
		t.Run(tc.rng, func(t *testing.T) {
			if got := flatten(e.follow(t, "/apps", e.admin.Token, tc.rng, "name")); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	for _, rng := range []string{"id ..; max=1000;", emptyHeader, "id ..; max=2", "id ..; max=2, order=desc"} {
		t.Run("id "+rng, func(t *testing.T) {
			pages := e.follow(t, "/apps", e.admin.Token, rng, "name")
			got := flatten(pages)
			if len(got) != len(names) {
				t.Errorf("got %v", got)
			}
			seen := map[string]bool{}
			for _, n := range got {
				if seen[n] {
					t.Errorf("%s listed twice", n)
				}
				seen[n] = true
			}
			if rng == "id ..; max=1000;" && (len(pages) != 1 || pages[0].status != http.StatusOK) {
				t.Errorf("paginator first request: %d pages, status %d", len(pages), pages[0].status)
			}
		})
	}
}

// TestAppRangeByUpdatedAt pages apps by updated_at. Times differ in their
// fractional seconds (12:00:00, 12:00:00.25, …), which must still sort in
// time order.
func TestAppRangeByUpdatedAt(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	e := newEnv(t, withClock(clock))
	var names []string
	for i := range 9 {
		clock.Advance(250 * time.Millisecond)
		name := fmt.Sprintf("timed-%d", i)
		e.createApp(e.admin.Token, name)
		names = append(names, name)
	}
	if got := flatten(e.follow(t, "/apps", e.admin.Token, "updated_at ..; max=2", "name")); !slices.Equal(got, names) {
		t.Errorf("by updated_at = %v, want %v", got, names)
	}
	desc := slices.Clone(names)
	slices.Reverse(desc)
	if got := flatten(e.follow(t, "/apps", e.admin.Token, "updated_at ..; max=4, order=desc", "name")); !slices.Equal(got, desc) {
		t.Errorf("by updated_at desc = %v, want %v", got, desc)
	}
}

func TestRangeMaxDefaultAndCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	app := e.createApp(e.admin.Token, "many")
	e.addReleases(app.ID, 1103) // v1..v1105

	r := e.must(http.StatusPartialContent, "GET", "/apps/many/releases", e.admin.Token, nil)
	if n := len(decodeAs[[]releaseJSON](t, r)); n != 200 {
		t.Errorf("default page has %d releases, want 200", n)
	}
	if got := r.Header.Get("Next-Range"); got != "version ]200..; max=200" {
		t.Errorf("Next-Range = %q", got)
	}
	if got := r.Header.Get("Content-Range"); got != "version 1..200" {
		t.Errorf("Content-Range = %q", got)
	}

	r = e.must(http.StatusPartialContent, "GET", "/apps/many/releases", e.admin.Token, nil, "Range", "version ..; max=5000")
	if n := len(decodeAs[[]releaseJSON](t, r)); n != 1000 {
		t.Errorf("max=5000 gave %d releases, want 1000", n)
	}
	if got := r.Header.Get("Next-Range"); got != "version ]1000..; max=1000" {
		t.Errorf("Next-Range = %q", got)
	}
	pages := e.follow(t, "/apps/many/releases", e.admin.Token, "version ..; max=1000, order=desc", "version")
	if len(pages) != 2 || len(pages[0].keys) != 1000 || len(pages[1].keys) != 105 {
		t.Errorf("pages of %d, %d", len(pages[0].keys), len(pages[len(pages)-1].keys))
	}
	if got := flatten(pages); !slices.Equal(got, versions(1105, 1)) {
		t.Errorf("desc pages do not visit v1105..v1 once each")
	}
	if got := flatten(e.follow(t, "/apps/many/releases", e.admin.Token, "id ..; max=1000;", "version")); len(got) != 1105 {
		t.Errorf("id pages: %d releases", len(got))
	}
}

func TestInvalidRanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "badrange")
	for _, tc := range []struct{ path, rng string }{
		{"/apps/badrange/releases", "name ..; max=2"},
		{"/apps/badrange/releases", "foo .."},
		{"/apps/badrange/releases", "version ..; max=0"},
		{"/apps/badrange/releases", "version ..; max=-5"},
		{"/apps/badrange/releases", "version ..; max=abc"},
		{"/apps/badrange/releases", "version ..; max=1.5"},
		{"/apps/badrange/releases", "version ..; order=sideways"},
		{"/apps/badrange/releases", "version ..; colour=red"},
		{"/apps/badrange/releases", "version 5"},
		{"/apps/badrange/releases", "version abc..; max=2"},
		{"/apps/badrange/releases", "version ..xyz"},
		{"/apps/badrange/releases", "version ]v3..; max=2"},
		{"/apps", "version ..; max=2"},
		{"/apps", "bogus"},
		{"/apps", "name ..; max=0"},
		{"/apps", "name ..; order=up"},
		{"/users/~/apps", "created_at .."},
	} {
		t.Run(tc.path+" "+tc.rng, func(t *testing.T) {
			checkError(t, e.do("GET", tc.path, e.admin.Token, nil, "Range", tc.rng), http.StatusRequestedRangeNotSatisfiable, "requested_range_not_satisfiable")
		})
	}
}
