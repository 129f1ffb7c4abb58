package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerRestart checks the server's start-up contract: the first start
// prints the admin's credentials and writes <data-dir>/admin-token; SIGTERM
// stops it cleanly; a restart on the same data directory prints only the API
// URL and keeps the accounts and apps.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	srv := startServerIn(t, dataDir, true)

	// A script that has seen the banner must find the file: it is written
	// before the banner is printed.
	tokenFile := filepath.Join(dataDir, "admin-token")
	st, err := os.Stat(tokenFile)
	if err != nil {
		time.Sleep(time.Second)
		if st, err = os.Stat(tokenFile); err == nil {
			t.Errorf("admin-token appeared only after the banner was printed: a script reading it on seeing the banner races the server")
		} else {
			t.Fatalf("first start wrote no admin-token: %v", err)
		}
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("admin-token mode = %v, want 0600", mode)
	}
	if b, _ := os.ReadFile(tokenFile); string(b) != srv.AdminToken+"\n" {
		t.Errorf("admin-token holds %q, want the banner's token and a newline %q", b, srv.AdminToken+"\n")
	}

	h := srv.heroku(t, srv.AdminToken)
	h.ok(t, "apps:create", "survivor")

	if err := srv.stop(); err != nil {
		t.Errorf("skiff server after SIGTERM: %v, want exit status 0\nstderr:\n%s", err, srv.stderr.String())
	}

	again := startServerIn(t, dataDir, false)
	h = again.heroku(t, srv.AdminToken) // the first start's token
	res := h.ok(t, "auth:whoami")
	wantEqual(t, res, "stdout", srv.AdminEmail+"\n")
	res = h.ok(t, "apps")
	wantContains(t, res, "stdout", "survivor")
	// The CLI runs above took over a second: the banner is long complete.
	if out := again.stdout.String(); strings.Contains(out, "Admin token:") || strings.Contains(out, "Admin email:") {
		t.Errorf("a restart printed the admin's credentials again:\n%s", out)
	}
}
