package registry

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// accounts is a fixed table of tokens and apps, standing in for the
// platform (whose own tests cover tokens and access).
type accounts struct {
	tokens  map[string]string          // token → account
	apps    map[string]map[string]bool // account → apps it can use
	mu      *sync.Mutex
	revoked map[string]bool   // tokens revoked
	ids     map[string]string // app name → id, for apps whose id is not "id-"+name
}

func (a accounts) Authenticate(_ context.Context, secret string) (Principal, error) {
	if acc, ok := a.tokens[secret]; ok {
		return Principal{Account: acc, Token: secret}, nil
	}
	return Principal{}, errors.New("invalid token")
}

func (a accounts) Active(_ context.Context, p Principal) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.revoked[p.Token], nil
}

func (a accounts) AppID(_ context.Context, account, app string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.apps[account][app] {
		return "", nil
	}
	return a.idOf(app), nil
}

func (a accounts) idOf(app string) string {
	if id, ok := a.ids[app]; ok {
		return id
	}
	return "id-" + app
}

func (a accounts) Apps(context.Context) (map[string]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string]string{}
	for _, apps := range a.apps {
		for app, ok := range apps {
			if ok {
				m[a.idOf(app)] = app
			}
		}
	}
	return m, nil
}

// rename renames an app of account, keeping its id; to == "" destroys it.
func (a accounts) rename(account, from, to string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := a.idOf(from)
	delete(a.apps[account], from)
	delete(a.ids, from)
	if to != "" {
		a.apps[account][to] = true
		a.ids[to] = id
	}
}

// create adds a new app for account, with a new id even if the name was
// used before.
func (a accounts) create(account, app, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apps[account][app] = true
	a.ids[app] = id
}

const (
	aliceToken = "skf_alice"
	bobToken   = "skf_bob"
)

func testAccounts() accounts {
	return accounts{
		tokens:  map[string]string{aliceToken: "alice", bobToken: "bob"},
		mu:      new(sync.Mutex),
		revoked: map[string]bool{},
		ids:     map[string]string{},
		apps: map[string]map[string]bool{
			"alice": {"conformance": true, "myapp": true, "other": true},
			"bob":   {"bobapp": true},
		},
	}
}

// newRegistry starts a registry under a new directory and serves it.
func newRegistry(t *testing.T, dir string) (*Registry, *httptest.Server) {
	t.Helper()
	return newRegistryWith(t, dir, testAccounts())
}

func newRegistryWith(t *testing.T, dir string, acc accounts) (*Registry, *httptest.Server) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	r, err := New(context.Background(), Config{Dir: dir, Accounts: acc})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		srv.Close()
		r.Close()
	})
	return r, srv
}

var (
	toolsOnce sync.Once
	toolsDir  string
	toolsErr  error
)

// tool builds (once per test process) a Go tool listed in go.mod's tool
// block and returns its path: crane, the OCI conformance suite.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	toolsOnce.Do(func() {
		toolsDir, toolsErr = os.MkdirTemp("", "skiff-registry-tools-")
	})
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
	bin := filepath.Join(toolsDir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	out, err := exec.Command("go", "build", "-o", bin+".tmp", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if toolsDir != "" {
		os.RemoveAll(toolsDir)
	}
	os.Exit(code)
}
