package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// burstApp writes 10 000 lines of 1 KB to stdout at once (10 MB: more than
// a stuck receiver's socket buffers hold), then a line every 200 ms.
const burstApp = `package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	pad := strings.Repeat(".", 1000)
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(w, "burst %d %s\n", i, pad)
	}
	fmt.Fprintln(w, "burst done")
	w.Flush()
	for i := 0; ; i++ {
		fmt.Println("alive", i)
		time.Sleep(200 * time.Millisecond)
	}
}
`

// TestDrainBurstFromDyno: a dyno writes 10 000 lines at once into an app
// whose only drain accepts a connection and never reads. The dyno goes on
// writing, its whole output is in the app's log, and the drain's losses
// are counted.
func TestDrainBurstFromDyno(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	store, err := image.Open(filepath.Join(dataDir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := store.ImportLayout(imagetest.BuildGo(t, burstApp))
	if err != nil {
		t.Fatal(err)
	}
	const bridge, subnet = "skdr1", "10.213.241.0/24"
	s := startServerIn(t, dataDir, true, "--dynos=true", "--dyno-bridge", bridge, "--dyno-subnet", subnet, "--metrics-addr", "127.0.0.1:0")
	t.Cleanup(func() {
		s.stop()
		if left := leftovers(t, dataDir, bridge); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
	h := s.heroku(t, s.AdminToken)
	const app = "bursty"
	h.ok(t, "apps:create", app)
	stuck := "syslog://" + stuckReceiver(t)
	h.ok(t, "drains:add", stuck, "-a", app)
	s.apiJSON(t, s.AdminToken, "PATCH", "/apps/"+app+"/formation",
		map[string]any{"updates": []map[string]any{{"type": "worker", "docker_image": refs[0].ID, "quantity": 1}}},
		"application/vnd.heroku+json; version=3.docker-releases", 200, nil)

	// The dyno is not held up: it reaches its steady output after the
	// burst, and every burst line is in the history (1 500 kept).
	deadline := time.Now().Add(90 * time.Second)
	for {
		out := h.ok(t, "logs", "-n", "1500", "-a", app, "--dyno", "worker.1").stream("stdout")
		if strings.Contains(out, "app[worker.1]: alive 5") {
			if !strings.Contains(out, "app[worker.1]: burst 9999 ") || !strings.Contains(out, "app[worker.1]: burst done") {
				t.Errorf("the burst's last lines are not in the log:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dyno did not get past its burst:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	m := scrape(t, s)
	re := regexp.MustCompile(`(?m)^skiff_drain_lines_dropped_total\{[^}]*scheme="syslog"\} (\d+)$`)
	if d := re.FindStringSubmatch(m); d == nil || d[1] == "0" {
		t.Errorf("the stuck drain reports no drops:\n%s", m)
	}
	if !regexp.MustCompile(`(?m)^skiff_logplex_dropped_queue_total 0$`).MatchString(m) {
		t.Errorf("logplex dropped lines of a 10 000-line burst:\n%s", m)
	}
}
