package api

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentConfigSets: 50 parallel config:set calls through the HTTP
// API yield 50 releases with distinct, consecutive versions, and the final
// config holds every key.
func TestConcurrentConfigSets(t *testing.T) {
	t.Parallel()
	const n = 50
	e := newEnv(t)
	e.createApp(e.admin.Token, "busy")
	base := len(e.releases(e.admin.Token, "busy"))
	e.drain()

	var wg sync.WaitGroup
	results := make([]*response, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = e.do("PATCH", "/apps/busy/config-vars", e.admin.Token, fmt.Sprintf(`{"KEY_%02d": "value-%d"}`, i, i))
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		if r.Status != http.StatusOK {
			t.Errorf("PATCH %d: %s", i, r)
		}
	}

	rels := e.releases(e.admin.Token, "busy")
	if len(rels) != base+n {
		t.Fatalf("%d releases, want %d", len(rels), base+n)
	}
	descs := map[string]bool{}
	for i, r := range rels {
		if r.Version != i+1 {
			t.Errorf("release %d has version %d: versions must be consecutive", i, r.Version)
		}
		if i >= base {
			if !strings.HasPrefix(r.Description, "Set KEY_") || descs[r.Description] {
				t.Errorf("v%d: description %q repeated or unexpected", r.Version, r.Description)
			}
			descs[r.Description] = true
		}
		if r.Current != (i == len(rels)-1) {
			t.Errorf("v%d current=%v", r.Version, r.Current)
		}
	}
	// Every release's snapshot holds exactly one key more than the one
	// before it: no update was lost or based on a stale config.
	for i := base; i < len(rels); i++ {
		cfg := decodeAs[map[string]string](t, e.must(http.StatusOK, "GET", fmt.Sprintf("/apps/busy/releases/%d/config-vars", rels[i].Version), e.admin.Token, nil))
		if len(cfg) != i-base+1 {
			t.Errorf("v%d has %d config vars, want %d", rels[i].Version, len(cfg), i-base+1)
		}
	}
	cfg := e.config(e.admin.Token, "busy")
	if len(cfg) != n {
		t.Errorf("final config has %d keys, want %d", len(cfg), n)
	}
	for i := range n {
		if k := fmt.Sprintf("KEY_%02d", i); cfg[k] != fmt.Sprintf("value-%d", i) {
			t.Errorf("%s = %q", k, cfg[k])
		}
	}
	// One "Release vN created" line per version.
	var created []string
	for _, line := range e.audit() {
		if strings.HasPrefix(line, "Release v") {
			created = append(created, line)
		}
	}
	sort.Strings(created)
	if len(created) != n {
		t.Errorf("%d release events, want %d", len(created), n)
	}
	if n := e.count(`SELECT count(DISTINCT version) FROM releases r JOIN apps a ON a.id = r.app_id WHERE a.name = 'busy'`); n != base+50 {
		t.Errorf("%d distinct versions stored", n)
	}
	if last := e.count(`SELECT last_version FROM apps WHERE name = 'busy'`); last != base+n {
		t.Errorf("last_version = %d, want %d", last, base+n)
	}
}

// TestConcurrentWritesAcrossApps mixes config sets, scaling and rollbacks
// on two apps: each app's versions stay consecutive.
func TestConcurrentWritesAcrossApps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, app := range []string{"conc-a", "conc-b"} {
		e.createApp(e.admin.Token, app)
		e.deploy(e.admin.Token, app, "web")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for i := range 20 {
		for _, app := range []string{"conc-a", "conc-b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r *response
				switch i % 3 {
				case 0:
					r = e.do("PATCH", "/apps/"+app+"/config-vars", e.admin.Token, fmt.Sprintf(`{"K%d": "v"}`, i))
				case 1:
					r = e.do("PATCH", "/apps/"+app+"/formation/web", e.admin.Token, `{"quantity": "+1"}`)
				case 2:
					r = e.do("POST", "/apps/"+app+"/releases", e.admin.Token, `{"release": "2"}`)
				}
				if r.Status >= 300 {
					mu.Lock()
					failures = append(failures, r.String())
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("failures: %q", failures)
	}
	for _, app := range []string{"conc-a", "conc-b"} {
		rels := e.releases(e.admin.Token, app)
		// 3 at start, 7 config sets (i%3==0 for i<20), 6 rollbacks.
		if len(rels) != 3+7+6 {
			t.Errorf("%s: %d releases", app, len(rels))
		}
		for i, r := range rels {
			if r.Version != i+1 {
				t.Errorf("%s: release %d has version %d", app, i, r.Version)
			}
		}
		if q := e.formation(e.admin.Token, app)["web"].Quantity; q != 1+7 {
			t.Errorf("%s: web quantity %d, want 8", app, q)
		}
	}
}
