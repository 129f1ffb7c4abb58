package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestCrashDuringWrites kills the server with SIGKILL while clients are
// setting config vars, restarts it on the same data directory, and checks
// that what was acknowledged survived and that the state is consistent:
// release versions 1..N without a gap, every release with its complete
// config, and the app's config equal to its newest release's.
func TestCrashDuringWrites(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	s := startServerIn(t, dataDir, true)
	token := s.AdminToken
	s.apiJSON(t, token, "POST", "/apps", map[string]string{"name": "crashy"}, "", http.StatusCreated, nil)

	// Each write adds one new key, so release vN (N >= 3) must hold exactly
	// N-2 keys, each release's keys a superset of the one before.
	const writers = 4
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("K%d_%d", w, i)
				if setVar(client, s.URL, token, key) != nil {
					return // the server is gone
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
			}
		}()
	}
	// Let a good stream of writes through, then kill mid-stream.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 80 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}

	s2 := startServerIn(t, dataDir, false)
	var releases []struct {
		ID          string `json:"id"`
		Version     int    `json:"version"`
		Description string `json:"description"`
		Current     bool   `json:"current"`
	}
	status, body := s2.apiWithRange(t, token, "/apps/crashy/releases", "version ..; max=1000")
	if status != http.StatusOK {
		t.Fatalf("list releases after restart: %d %s", status, body)
	}
	decode(t, body, &releases)
	if len(releases) < len(acked)+2 {
		t.Fatalf("%d releases after restart, but %d writes were acknowledged (plus v1, v2)", len(releases), len(acked))
	}
	prev := map[string]string{}
	for i, r := range releases {
		if r.Version != i+1 {
			t.Fatalf("release %d has version %d: versions must run 1..N without a gap", i, r.Version)
		}
		var cfg map[string]string
		s2.apiJSON(t, token, "GET", fmt.Sprintf("/apps/crashy/releases/%d/config-vars", r.Version), nil, "", http.StatusOK, &cfg)
		if r.Version >= 3 && len(cfg) != r.Version-2 {
			t.Errorf("v%d (%s) has %d config vars, want %d", r.Version, r.Description, len(cfg), r.Version-2)
		}
		for k := range prev {
			if _, ok := cfg[k]; !ok {
				t.Errorf("v%d lost %s, which v%d had", r.Version, k, r.Version-1)
			}
		}
		prev = cfg
	}
	if !releases[len(releases)-1].Current {
		t.Errorf("the newest release v%d is not current", releases[len(releases)-1].Version)
	}
	var cfg map[string]string
	s2.apiJSON(t, token, "GET", "/apps/crashy/config-vars", nil, "", http.StatusOK, &cfg)
	if len(cfg) != len(prev) {
		t.Errorf("app config has %d vars, the newest release %d", len(cfg), len(prev))
	}
	for _, k := range acked {
		if _, ok := cfg[k]; !ok {
			t.Errorf("acknowledged write %s is missing after the restart", k)
		}
	}

	// The restarted server carries on numbering where the store left off.
	if err := setVar(client, s2.URL, token, "AFTER"); err != nil {
		t.Fatal(err)
	}
	var latest []struct{ Version int }
	status, body = s2.apiWithRange(t, token, "/apps/crashy/releases", "version ..; max=1, order=desc")
	if status != http.StatusPartialContent {
		t.Fatalf("latest release: %d %s", status, body)
	}
	decode(t, body, &latest)
	if want := len(releases) + 1; latest[0].Version != want {
		t.Errorf("release after restart is v%d, want v%d", latest[0].Version, want)
	}
}

func setVar(c *http.Client, url, token, key string) error {
	b, _ := json.Marshal(map[string]string{key: "v"})
	req, err := http.NewRequest("PATCH", url+"/apps/crashy/config-vars", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PATCH config-vars: %s", resp.Status)
	}
	return nil
}
