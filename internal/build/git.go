package build

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

// Git over HTTPS: `git push https://<git host>/<app>.git`. Each app has a
// bare repository under Dir/git; git's own http-backend (through CGI)
// speaks the smart HTTP protocol, and the repository's pre-receive hook —
// the skiff binary as `skiff git-hook` — archives the pushed commit and
// posts it back to this service, which builds it while the hook copies
// the build's output to git, which shows it as "remote:" lines. A failed
// build makes the hook, and so the push, fail: the branch is not updated.

// Where a hook finds its way back; set in the hook's environment.
const (
	hookURLEnv   = "SKIFF_HOOK_URL"
	hookTokenEnv = "SKIFF_HOOK_TOKEN"
	// hookPath is where hooks post their archives (under the API URL).
	hookPath = "/_skiff/git-hook"
	// hookStatus is the HTTP trailer that carries the build's outcome.
	hookStatus = "Skiff-Build-Status"
)

// hookGrant is what one push may build.
type hookGrant struct {
	actor   *platform.Account
	app     string
	expires time.Time
}

var gitPath = regexp.MustCompile(`^/([a-z][a-z0-9-]{1,29})\.git(/.*)?$`)

// IsGitPath reports whether an HTTP request path is for the git service
// (an app's repository or the hooks' endpoint).
func IsGitPath(p string) bool {
	return gitPath.MatchString(p) || strings.HasPrefix(p, hookPath+"/")
}

var repoInit sync.Mutex

// repo returns an app's bare repository, creating it with its hook.
func (s *Service) repo(appID string) (string, error) {
	dir := filepath.Join(s.cfg.Dir, "git", appID+".git")
	repoInit.Lock()
	defer repoInit.Unlock()
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if out, err := exec.Command("git", "init", "--quiet", "--bare", "--initial-branch=main", tmp).CombinedOutput(); err != nil {
		return "", fmt.Errorf("git init: %v: %s", err, out)
	}
	if out, err := exec.Command("git", "-C", tmp, "config", "http.receivepack", "true").CombinedOutput(); err != nil {
		return "", fmt.Errorf("git config: %v: %s", err, out)
	}
	hook := fmt.Sprintf("#!/bin/sh\nexec %s git-hook\n", shellQuote(s.cfg.HookBinary))
	if err := os.WriteFile(filepath.Join(tmp, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ServeGit serves an app's repository over smart HTTP, authenticating
// with Basic auth whose password is an API token (any user name), and the
// hooks' endpoint.
func (s *Service) ServeGit(w http.ResponseWriter, r *http.Request) {
	if tok, ok := strings.CutPrefix(r.URL.Path, hookPath+"/"); ok {
		s.serveHook(w, r, tok)
		return
	}
	m := gitPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.NotFound(w, r)
		return
	}
	_, pass, ok := r.BasicAuth()
	if !ok || pass == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="Skiff"`)
		http.Error(w, "Authentication required: use your API token as the password.", http.StatusUnauthorized)
		return
	}
	actor, _, err := s.cfg.Platform.Authenticate(r.Context(), pass)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="Skiff"`)
		http.Error(w, "Invalid credentials: use your API token as the password.", http.StatusUnauthorized)
		return
	}
	app, err := s.cfg.Platform.App(r.Context(), actor, m[1])
	if err != nil {
		http.Error(w, "No such app as "+m[1]+".", http.StatusNotFound)
		return
	}
	dir, err := s.repo(app.ID)
	if err != nil {
		s.cfg.Logger.Error("git repository", "app", app.Name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	token := newKey()
	s.mu.Lock()
	for k, g := range s.hooks {
		if time.Now().After(g.expires) {
			delete(s.hooks, k)
		}
	}
	s.hooks[token] = hookGrant{actor: actor, app: app.ID, expires: time.Now().Add(time.Hour)}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.hooks, token)
		s.mu.Unlock()
	}()
	gitExe, err := exec.LookPath("git")
	if err != nil {
		http.Error(w, "git is not installed on the server", http.StatusInternalServerError)
		return
	}
	h := &cgi.Handler{
		Path: gitExe,
		Args: []string{"http-backend"},
		Dir:  dir,
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(dir),
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + actor.Email,
			hookURLEnv + "=" + strings.TrimSuffix(s.cfg.URL, "/") + hookPath + "/" + token,
			hookTokenEnv + "=" + token,
			"PATH=" + os.Getenv("PATH"),
		},
		Logger: nil,
	}
	// The repository's directory is named by the app's id, not its name.
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + app.ID + ".git" + m[2]
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// CGI needs a length; git sends large pushes chunked.
		f, n, err := s.spool(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		r2.Body, r2.ContentLength, r2.TransferEncoding = f, n, nil
	}
	h.ServeHTTP(&flushWriter{w}, r2)
}

// spool copies a request body of unknown length to a temporary file.
func (s *Service) spool(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp(filepath.Join(s.cfg.Dir, "work"), "push-")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, io.LimitReader(body, s.cfg.MaxSourceBytes+1))
	if err == nil && n > s.cfg.MaxSourceBytes {
		err = fmt.Errorf("the push is larger than %d bytes", s.cfg.MaxSourceBytes)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	return f, n, nil
}

// flushWriter flushes after every write, so that sideband progress (the
// build's output) reaches the pusher as it happens.
type flushWriter struct{ http.ResponseWriter }

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.ResponseWriter.Write(p)
	f.Flush()
	return n, err
}

func (f *flushWriter) Flush() { _ = http.NewResponseController(f.ResponseWriter).Flush() }

// serveHook builds the archive a pre-receive hook posts and streams the
// build's output back, with the outcome in the hookStatus trailer.
func (s *Service) serveHook(w http.ResponseWriter, r *http.Request, token string) {
	s.mu.Lock()
	g, ok := s.hooks[token]
	s.mu.Unlock()
	if !ok || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	version := r.URL.Query().Get("version")
	w.Header().Set("Trailer", hookStatus)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if last, err := s.cfg.Platform.LatestBuild(r.Context(), g.app, "succeeded"); err == nil && last != nil && version != "" && last.SourceVersion == version {
		fmt.Fprintf(w, "=== %s is already deployed; no new release.\n", short(version))
		w.Header().Set(hookStatus, "ok")
		return
	}
	b, err := s.Start(r.Context(), g.actor, g.app, Source{Version: version, Tar: r.Body})
	if err != nil {
		fmt.Fprintf(w, " !     %s\n", userMessage(err))
		if pe, ok := platform.AsError(err); ok {
			fmt.Fprintf(w, " !     %s\n", pe.Message)
		}
		w.Header().Set(hookStatus, "failed")
		return
	}
	rc := http.NewResponseController(w)
	flush := func() { _ = rc.Flush() }
	// The output ends once the build's outcome is recorded.
	_ = s.FollowOutput(r.Context(), b, w, flush)
	if done, err := s.cfg.Platform.BuildByStreamKey(r.Context(), b.StreamKey); err != nil || done.Status != "succeeded" {
		w.Header().Set(hookStatus, "failed")
		return
	}
	w.Header().Set(hookStatus, "ok")
}

// RunHook is `skiff git-hook`: git's pre-receive hook in an app's
// repository. It builds the push to main (or master): it posts `git
// archive` of the new commit to the service and copies the build's output
// to stdout, which git relays to the pusher. It returns the hook's exit
// status: non-zero fails the push.
func RunHook(stdin io.Reader, stdout io.Writer) int {
	url, token := os.Getenv(hookURLEnv), os.Getenv(hookTokenEnv)
	if url == "" || token == "" {
		fmt.Fprintln(stdout, " !     skiff git-hook runs as a repository's hook, under skiff server")
		return 1
	}
	var rev, ref string
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		switch {
		case strings.Trim(f[1], "0") == "":
			fmt.Fprintf(stdout, "=== %s deleted\n", f[2])
		case f[2] == "refs/heads/main" || f[2] == "refs/heads/master":
			rev, ref = f[1], f[2]
		default:
			fmt.Fprintf(stdout, "=== Pushed to %s: only main and master are built and released; skipping the build.\n", f[2])
		}
	}
	if rev == "" {
		return 0
	}
	fmt.Fprintf(stdout, "=== Building %s (%s)\n", short(rev), strings.TrimPrefix(ref, "refs/heads/"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", rev)
	archive.Stderr = stdout
	body, err := archive.StdoutPipe()
	if err != nil {
		fmt.Fprintf(stdout, " !     %v\n", err)
		return 1
	}
	if err := archive.Start(); err != nil {
		fmt.Fprintf(stdout, " !     git archive: %v\n", err)
		return 1
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"?version="+rev, body)
	if err != nil {
		fmt.Fprintf(stdout, " !     %v\n", err)
		return 1
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stdout, " !     Could not reach the build service: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	_, copyErr := io.Copy(stdout, resp.Body)
	archErr := archive.Wait()
	if copyErr != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stdout, " !     The build service answered %s\n", resp.Status)
		return 1
	}
	if resp.Trailer.Get(hookStatus) != "ok" {
		if archErr != nil {
			fmt.Fprintf(stdout, " !     git archive: %v\n", archErr)
		}
		fmt.Fprintln(stdout, " !     Push rejected: the build failed.")
		return 1
	}
	return 0 // git archive may have been cut short: an already deployed commit needs no source
}
