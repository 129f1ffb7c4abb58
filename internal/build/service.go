package build

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/platform"
)

// Config configures a Service.
type Config struct {
	Platform *platform.Platform
	// Builder builds the images; its Base is set to the imported stacks.
	Builder *Builder
	// Dir holds the service's state: logs/, cache/<app id>/, sources/,
	// work/ and git/.
	Dir string
	// URL is the API's base URL, for output_stream_url and source URLs.
	URL string
	// Parallel is how many builds (of different apps) run at once. Default 2.
	Parallel int
	// MaxSourceBytes bounds a source tarball, compressed and unpacked.
	// Default 1 GiB.
	MaxSourceBytes int64
	// HTTP fetches source_blob URLs; default a client with a 10-minute timeout.
	HTTP *http.Client
	// HookBinary is the executable git's pre-receive hook runs as
	// `<HookBinary> git-hook` (the skiff binary).
	HookBinary string
	// LogRetention is how long a finished build's output is kept (its
	// output_stream_url then says it is no longer kept). Default 30 days.
	LogRetention time.Duration
	// SourceRetention is how long an uploaded source (POST
	// /apps/{app}/sources) and an unused upload slot are kept, as
	// Heroku's source URLs expire. Default one hour.
	SourceRetention time.Duration
	// CacheMaxBytes bounds each app's layer cache: after each build the
	// least recently used layers go until it fits. Default 5 GiB.
	CacheMaxBytes int64
	Logger        *slog.Logger
}

// trimCache keeps the app's layer cache within CacheMaxBytes.
func (s *Service) trimCache(appID string, out io.Writer) {
	n, freed, err := TrimCache(s.cacheDir(appID), s.cfg.CacheMaxBytes)
	if err != nil {
		s.cfg.Logger.Warn("trimming a build cache", "app_id", appID, "err", err)
		return
	}
	if n > 0 {
		fmt.Fprintf(out, "=== Build cache: %d least recently used layers removed (%d MB), to stay within %d MB\n", n, freed>>20, s.cfg.CacheMaxBytes>>20)
	}
}

// sweepEvery is how often old logs and sources are removed.
const sweepEvery = time.Hour

// SetHold gives the service a function it calls with each image it has
// built, before the release that names it is recorded: the image garbage
// collector keeps such images for a grace period (they are referenced by
// nothing yet). Call it before the first build.
func (s *Service) SetHold(hold func(imageID string)) { s.hold = hold }

// Publisher puts a built image into the app's registry repository
// <app>/<typ>, tagged latest, and returns its manifest digest.
type Publisher func(ctx context.Context, app, typ, imageID string) (string, error)

// SetPublish gives the service the embedded registry: a successful build
// publishes each built image to its process type's repository before the
// release is created (a failure to publish fails the build). Call it
// before the first build.
func (s *Service) SetPublish(publish Publisher) { s.publish = publish }

// Service runs builds: one at a time per app, up to Parallel at once.
type Service struct {
	cfg Config
	sem chan struct{}

	mu       sync.Mutex
	appLocks map[string]*sync.Mutex
	running  map[string]*running // by build id
	hooks    map[string]hookGrant

	hold    func(imageID string) // see SetHold
	publish Publisher            // see SetPublish

	ctx    context.Context // cancelled by Close: running builds fail
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

type running struct {
	log    *outputLog
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// New opens the service's directories and marks the builds a previous run
// left pending as failed.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.MaxSourceBytes <= 0 {
		cfg.MaxSourceBytes = 1 << 30
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Minute}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LogRetention <= 0 {
		cfg.LogRetention = 30 * 24 * time.Hour
	}
	if cfg.SourceRetention <= 0 {
		cfg.SourceRetention = time.Hour
	}
	if cfg.CacheMaxBytes <= 0 {
		cfg.CacheMaxBytes = 5 << 30
	}
	for _, d := range []string{"logs", "cache", "sources", "work", "git"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("builds: %w", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(cfg.Dir, "work")); err != nil {
		return nil, fmt.Errorf("builds: clearing old work: %w", err)
	}
	if err := os.Mkdir(filepath.Join(cfg.Dir, "work"), 0o700); err != nil {
		return nil, fmt.Errorf("builds: %w", err)
	}
	if err := cfg.Platform.FailPendingBuilds(ctx); err != nil {
		return nil, fmt.Errorf("builds: %w", err)
	}
	s := &Service{cfg: cfg, sem: make(chan struct{}, cfg.Parallel), appLocks: map[string]*sync.Mutex{},
		running: map[string]*running{}, hooks: map[string]hookGrant{}}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	cfg.Builder.Base = func(name string) (string, error) {
		return cfg.Platform.StackImage(context.Background(), name)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		for {
			s.sweep(time.Now())
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// sweep removes the output logs of builds that ended more than
// LogRetention before now, and uploaded sources and slots older than
// SourceRetention. A running build's log is written to, so it is never
// old enough.
func (s *Service) sweep(now time.Time) (logs, sources int) {
	remove := func(dir string, older time.Duration, count *int) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			s.cfg.Logger.Warn("builds: sweeping old files", "dir", dir, "err", err)
			return
		}
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil || !fi.Mode().IsRegular() || now.Sub(fi.ModTime()) <= older {
				continue
			}
			if strings.HasSuffix(dir, "logs") {
				s.mu.Lock()
				_, live := s.running[strings.TrimSuffix(e.Name(), ".log")]
				s.mu.Unlock()
				if live {
					continue
				}
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
				*count++
			}
		}
	}
	remove(filepath.Join(s.cfg.Dir, "logs"), s.cfg.LogRetention, &logs)
	remove(filepath.Join(s.cfg.Dir, "sources"), s.cfg.SourceRetention, &sources)
	if logs+sources > 0 {
		s.cfg.Logger.Info("builds: removed old files", "logs", logs, "sources", sources)
	}
	return logs, sources
}

// Close stops running builds (they fail) and waits for them to end.
func (s *Service) Close() {
	s.cancel(fmt.Errorf("%w: the server stopped during the build", ErrFailed))
	s.wg.Wait()
}

// Source is what to build: a tarball at URL (http(s), or a source this
// service stores), or a tarball read from Tar.
type Source struct {
	URL, Version string
	Tar          io.Reader
}

// Create starts a build of a source_blob URL or, when tar is not nil, of
// the tarball it reads (see Start).
func (s *Service) Create(ctx context.Context, actor *platform.Account, ident, url, version string, tar io.Reader) (*platform.Build, error) {
	return s.Start(ctx, actor, ident, Source{URL: url, Version: version, Tar: tar})
}

// Start starts a build of the app ident and returns its pending record.
// The build runs in the background; see Wait and FollowOutput.
func (s *Service) Start(ctx context.Context, actor *platform.Account, ident string, src Source) (*platform.Build, error) {
	if src.Tar == nil {
		if err := s.checkURL(src.URL); err != nil {
			return nil, err
		}
	}
	work, err := os.MkdirTemp(filepath.Join(s.cfg.Dir, "work"), "src-")
	if err != nil {
		return nil, err
	}
	var checksum string
	if src.Tar != nil {
		// Read now: the caller's reader (a request body) ends with the call.
		if checksum, err = s.unpackSource(src.Tar, filepath.Join(work, "src")); err != nil {
			os.RemoveAll(work)
			return nil, &InvalidSourceError{userMessage(err)}
		}
	}
	app, b, err := s.cfg.Platform.CreateBuild(ctx, actor, ident, platform.BuildSource{URL: src.URL, Version: src.Version, Checksum: checksum})
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	log, err := newOutputLog(s.logPath(b.ID))
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	run := &running{log: log, done: make(chan struct{})}
	run.ctx, run.cancel = context.WithCancelCause(s.ctx)
	s.mu.Lock()
	s.running[b.ID] = run
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer os.RemoveAll(work)
		_ = s.run(run.ctx, app, b, src, work, checksum, log)
		run.cancel(nil)
		log.Close()
		s.mu.Lock()
		delete(s.running, b.ID)
		s.mu.Unlock()
		close(run.done)
	}()
	return b, nil
}

// InvalidSourceError is a source_blob the service cannot fetch.
type InvalidSourceError struct{ Msg string }

func (e *InvalidSourceError) Error() string { return e.Msg }

// SourceError is the message for the API's 422.
func (e *InvalidSourceError) SourceError() string { return e.Msg }

func (s *Service) checkURL(u string) error {
	if strings.HasPrefix(u, s.sourcesURL()) {
		return nil
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return &InvalidSourceError{"source_blob.url must be an http:// or https:// URL of a tarball."}
	}
	return nil
}

func (s *Service) sourcesURL() string { return strings.TrimSuffix(s.cfg.URL, "/") + "/build-sources/" }

func (s *Service) logPath(id string) string { return filepath.Join(s.cfg.Dir, "logs", id+".log") }

// Cancel stops a running build (DELETE /apps/{app}/builds/{id}): it fails
// with "the build was cancelled" and creates no release. It returns once
// the build has ended, with its final record.
func (s *Service) Cancel(ctx context.Context, actor *platform.Account, ident, id string) (*platform.Build, error) {
	_, b, err := s.cfg.Platform.Build(ctx, actor, ident, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	r := s.running[b.ID]
	s.mu.Unlock()
	if r == nil {
		return nil, &platform.Error{Kind: platform.KindConflict, Message: "Build " + b.ID + " has already " + b.Status + "."}
	}
	r.cancel(fmt.Errorf("%w: the build was cancelled by %s", ErrFailed, actor.Email))
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	_, b, err = s.cfg.Platform.Build(ctx, actor, ident, id)
	return b, err
}

// OutputURL is a build's output_stream_url.
func (s *Service) OutputURL(b *platform.Build) string {
	return strings.TrimSuffix(s.cfg.URL, "/") + "/build-output/" + b.StreamKey
}

// FollowOutput writes a build's output to w: live while it runs (flush
// after each burst), in full afterwards.
func (s *Service) FollowOutput(ctx context.Context, b *platform.Build, w io.Writer, flush func()) error {
	s.mu.Lock()
	r := s.running[b.ID]
	s.mu.Unlock()
	if r != nil {
		return r.log.Follow(ctx, w, flush)
	}
	return copyFinished(s.logPath(b.ID), w)
}

// lockApp serialises the builds of one app (and clearing its cache),
// saying so on out when it has to wait.
func (s *Service) lockApp(appID string, out io.Writer) func() {
	l := s.appLock(appID)
	if !l.TryLock() {
		fmt.Fprintf(out, "=== Waiting for the app's previous build to finish\n")
		l.Lock()
	}
	return l.Unlock
}

// appLock returns the lock of an app's builds.
func (s *Service) appLock(appID string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.appLocks[appID]
	if !ok {
		l = &sync.Mutex{}
		s.appLocks[appID] = l
	}
	return l
}

func (s *Service) cacheDir(appID string) string { return filepath.Join(s.cfg.Dir, "cache", appID) }

// ClearCache empties the app's layer cache (DELETE /apps/{app}/build-cache),
// after any build of the app in progress.
func (s *Service) ClearCache(ctx context.Context, actor *platform.Account, ident string) error {
	app, err := s.cfg.Platform.App(ctx, actor, ident)
	if err != nil {
		return err
	}
	unlock := s.lockApp(app.ID, io.Discard)
	defer unlock()
	return os.RemoveAll(s.cacheDir(app.ID))
}

// run is one build, from fetching the source to the release.
func (s *Service) run(ctx context.Context, app *platform.App, b *platform.Build, src Source, work, checksum string, out io.Writer) (err error) {
	fmt.Fprintf(out, "=== Fetching app code\n")
	defer func() {
		if err == nil {
			return
		}
		if !errors.Is(err, ErrFailed) {
			s.cfg.Logger.Error("build failed", "app", app.Name, "build", b.ID, "err", err)
		}
		fmt.Fprintf(out, "\n !     Build failed: %s\n", userMessage(err))
		if _, ferr := s.cfg.Platform.FinishBuild(context.WithoutCancel(ctx), app.ID, b.ID, platform.BuildOutcome{Err: errors.New(userMessage(err)), Checksum: checksum}); ferr != nil {
			s.cfg.Logger.Error("recording a failed build", "app", app.Name, "build", b.ID, "err", ferr)
		}
	}()
	dir := filepath.Join(work, "src")
	if src.Tar == nil {
		if checksum, err = s.fetch(src.URL, dir); err != nil {
			return err
		}
	}
	unlock := s.lockApp(app.ID, out)
	defer unlock()
	select {
	case s.sem <- struct{}{}:
	default:
		fmt.Fprintf(out, "=== Waiting for a free build slot (%d builds run at once)\n", s.cfg.Parallel)
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	defer func() { <-s.sem }()
	defer s.trimCache(app.ID, out) // still under the app's lock: no build of it uses the cache

	root := sourceRoot(dir)
	p, err := planBuild(root)
	if err != nil {
		return err
	}
	images := map[string]string{}
	built := map[string]string{} // dockerfile → image, to build a shared one once
	for _, typ := range sortedKeys(p.images) {
		ip := p.images[typ]
		if id, ok := built[ip.dockerfile]; ok {
			images[typ] = id
			continue
		}
		ctxDir, name := contextOf(ip.dockerfile)
		fmt.Fprintf(out, "=== Building %s (%s)\n", typ, ip.dockerfile)
		res, err := s.cfg.Builder.Build(ctx, Request{Context: filepath.Join(root, filepath.FromSlash(ctxDir)),
			Dockerfile: name, Args: p.args, Cache: s.cacheDir(app.ID), Out: out, Hold: s.hold})
		if err != nil {
			return err
		}
		images[typ], built[ip.dockerfile] = res.Image, res.Image
	}
	if s.publish != nil {
		for _, typ := range sortedKeys(p.images) {
			if !repoComponent.MatchString(typ) {
				fmt.Fprintf(out, "=== Not pushing %s to the registry: %s/%s is not a repository name (lower-case letters, digits, separators)\n", typ, app.Name, typ)
				continue
			}
			md, err := s.publish(ctx, app.Name, typ, images[typ])
			if err != nil {
				return fmt.Errorf("publishing %s to the registry: %w", typ, err)
			}
			fmt.Fprintf(out, "=== Pushed %s to the registry: %s/%s:latest (%s)\n", typ, app.Name, typ, md)
		}
	}
	procs := map[string]platform.Process{}
	for typ, pp := range p.procs {
		procs[typ] = platform.Process{Image: images[pp.image], Command: pp.command}
	}
	rel, err := s.cfg.Platform.FinishBuild(context.WithoutCancel(ctx), app.ID, b.ID, platform.BuildOutcome{Processes: procs, Checksum: checksum})
	if err != nil {
		return err
	}
	types := sortedKeys(procs)
	fmt.Fprintf(out, "=== Released v%d (%s)\n", rel.Version, strings.Join(types, ", "))
	if _, ok := procs[platform.ReleasePhase]; ok {
		fmt.Fprintf(out, "=== The release command runs before v%d becomes current\n", rel.Version)
	}
	return nil
}

// repoComponent is the OCI distribution spec's repository name component:
// a process type that is not one has no registry repository.
var repoComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// userMessage is what a user reads about a failed build: the build's own
// error, or a generic line for the platform's (logged in full).
func userMessage(err error) string {
	if errors.Is(err, ErrFailed) {
		return strings.TrimPrefix(err.Error(), ErrFailed.Error()+": ")
	}
	var ie *InvalidSourceError
	if errors.As(err, &ie) {
		return ie.Msg
	}
	return "internal error while building; the platform's log has the details"
}

// fetch downloads and unpacks a source tarball.
func (s *Service) fetch(u, dir string) (string, error) {
	if key, ok := strings.CutPrefix(u, s.sourcesURL()); ok {
		f, err := os.Open(s.sourcePath(key))
		if err != nil {
			return "", fmt.Errorf("%w: source_blob.url: no uploaded source at %s (uploads are kept for %s)", ErrFailed, u, s.cfg.SourceRetention)
		}
		defer f.Close()
		return s.unpackSource(f, dir)
	}
	resp, err := s.cfg.HTTP.Get(u)
	if err != nil {
		return "", fmt.Errorf("%w: fetching the source: %v", ErrFailed, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: fetching the source: %s answered %s", ErrFailed, u, resp.Status)
	}
	return s.unpackSource(resp.Body, dir)
}

// unpackSource unpacks a (gzipped) tarball with the image store's
// hardened unpacker: nothing can land outside dir, and the total size is
// bounded. It returns the tarball's checksum as Heroku writes it.
func (s *Service) unpackSource(r io.Reader, dir string) (string, error) {
	h := sha256.New()
	lr := &limitedReader{r: io.TeeReader(r, h), n: s.cfg.MaxSourceBytes}
	if err := image.UnpackWithLimits(lr, dir, image.Limits{MaxBytes: s.cfg.MaxSourceBytes}); err != nil {
		if lr.n < 0 {
			return "", fmt.Errorf("%w: the source tarball is larger than %d bytes", ErrFailed, s.cfg.MaxSourceBytes)
		}
		return "", fmt.Errorf("%w: the source is not a usable tarball: %v", ErrFailed, err)
	}
	_, _ = io.Copy(io.Discard, lr)
	return "SHA256:" + hex.EncodeToString(h.Sum(nil)), nil
}

type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errors.New("too large")
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errors.New("source tarball too large")
	}
	return n, err
}

func (s *Service) sourcePath(key string) string {
	return filepath.Join(s.cfg.Dir, "sources", key+".tar")
}

// CreateSource makes an upload slot (POST /apps/{app}/sources): a PUT to
// put_url stores a tarball that get_url, given as a build's
// source_blob.url, builds.
func (s *Service) CreateSource(ctx context.Context, actor *platform.Account, ident string) (getURL, putURL string, err error) {
	app, err := s.cfg.Platform.App(ctx, actor, ident)
	if err != nil {
		return "", "", err
	}
	key := randHex(24)
	// Which app the upload is for, so that destroying it removes it (Prune).
	if err := os.WriteFile(s.sourcePath(key)+".app", []byte(app.ID), 0o600); err != nil {
		return "", "", err
	}
	f, err := os.OpenFile(s.sourcePath(key)+".slot", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", "", err
	}
	f.Close()
	u := s.sourcesURL() + key
	return u, u, nil
}

// ServeSource is PUT/GET of a source URL; the key in the URL is its only
// credential, as with Heroku's signed URLs.
func (s *Service) ServeSource(w http.ResponseWriter, r *http.Request, key string) {
	if len(key) != 48 || strings.Trim(key, "0123456789abcdef") != "" {
		http.NotFound(w, r)
		return
	}
	path := s.sourcePath(key)
	switch r.Method {
	case http.MethodPut:
		if _, err := os.Stat(path + ".slot"); err != nil {
			http.Error(w, "no such upload slot", http.StatusNotFound)
			return
		}
		tmp := path + ".tmp-" + randHex(4)
		f, err := os.Create(tmp)
		if err != nil {
			http.Error(w, "cannot store the source", http.StatusInternalServerError)
			return
		}
		n, err := io.Copy(f, io.LimitReader(r.Body, s.cfg.MaxSourceBytes+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil || n > s.cfg.MaxSourceBytes {
			os.Remove(tmp)
			http.Error(w, fmt.Sprintf("the source must be a tarball of at most %d bytes", s.cfg.MaxSourceBytes), http.StatusRequestEntityTooLarge)
			return
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			http.Error(w, "cannot store the source", http.StatusInternalServerError)
			return
		}
		os.Remove(path + ".slot")
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		http.ServeFile(w, r, path)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// ImportStack imports a root filesystem tarball as the base image name
// (`skiff stack:import`); only an admin may.
func (s *Service) ImportStack(ctx context.Context, actor *platform.Account, name string, r io.Reader) (*platform.BaseImage, error) {
	if !actor.Admin {
		return nil, &platform.Error{Kind: platform.KindForbidden, Message: "Only an admin can import stacks."}
	}
	if err := platform.CheckStackName(name); err != nil {
		return nil, err
	}
	id, err := ImportRootfs(s.cfg.Builder.Images, filepath.Join(s.cfg.Dir, "work"), r, s.cfg.MaxSourceBytes*4)
	if err != nil {
		if errors.Is(err, ErrFailed) {
			return nil, &platform.Error{Kind: platform.KindInvalid, Message: userMessage(err)}
		}
		return nil, err
	}
	return s.cfg.Platform.PutStack(ctx, actor, name, id)
}

func newKey() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
