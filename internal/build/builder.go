package build

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/runtime"
	"golang.org/x/sys/unix"
)

// Limits bound each build.
type Limits struct {
	// Memory is each RUN container's memory limit in bytes. Default 1 GiB.
	Memory int64
	// Pids caps the processes and threads of a RUN container (fork bombs
	// stop there). Default 512.
	Pids int64
	// CPUShares is each RUN container's CPU weight. Default 512 (half of a
	// dyno's), so that running dynos keep the upper hand.
	CPUShares uint64
	// Timeout bounds a whole build. Default 15 minutes.
	Timeout time.Duration
	// MaxLayerBytes bounds the file content of one step's layer, and of
	// the build context. Default 2 GiB. A RUN step is stopped as soon as
	// its layer grows past it.
	MaxLayerBytes int64
	// DiskReserve is the free space a RUN step must leave on the disk
	// that holds it; a step that eats into it is stopped. Default 256 MiB.
	DiskReserve int64
}

func (l Limits) withDefaults() Limits {
	if l.Memory <= 0 {
		l.Memory = 1 << 30
	}
	if l.Pids <= 0 {
		l.Pids = 512
	}
	if l.CPUShares == 0 {
		l.CPUShares = 512
	}
	if l.Timeout <= 0 {
		l.Timeout = 15 * time.Minute
	}
	if l.MaxLayerBytes <= 0 {
		l.MaxLayerBytes = 2 << 30
	}
	if l.DiskReserve <= 0 {
		l.DiskReserve = 256 << 20
	}
	return l
}

// Builder turns a build context and a Dockerfile into an image in the
// image store, running RUN steps in containers on runtime.
type Builder struct {
	Images  *image.Store
	Runtime *runtime.Runtime
	// Init is the static init binary RUN containers get as PID 1 (see
	// runtime.Spec.Init); "" runs the command as PID 1.
	Init   string
	Limits Limits
	// Base resolves a FROM name that is not a stage to an image id in
	// Images (the imported stacks); nil accepts only digests.
	Base func(name string) (string, error)
	// Network runs RUN steps in the server's own network namespace, so
	// they reach whatever the host reaches (package mirrors, and also the
	// host's local services): for trusted Dockerfiles only. Off, a step
	// has a namespace of its own with only lo.
	Network bool
}

// Request is one image to build.
type Request struct {
	// Hold, if set, is called with the built image's id just before the
	// image is stored, so that the image garbage collector keeps it until
	// a release refers to it (even when an identical, unreferenced image
	// was already stored and a collection runs right after).
	Hold func(imageID string)
	// Context is the build context directory. Files .dockerignore excludes
	// are removed from it.
	Context string
	// Dockerfile is the Dockerfile's path inside Context; "" means
	// "Dockerfile".
	Dockerfile string
	// Args are the build arguments (--build-arg, heroku.yml build.config).
	Args map[string]string
	// Cache is the app's layer cache directory, created if needed.
	Cache string
	// Out receives the build's output.
	Out io.Writer
}

// Result is a built image.
type Result struct {
	Image  string // config digest: the image id releases name
	Config image.Config
	Steps  int // instructions run or reused
	Cached int // layer steps reused from the cache
}

// ErrFailed is wrapped by errors that are the build's own fault (the
// Dockerfile, a RUN step, the context) rather than the platform's.
var ErrFailed = errors.New("build failed")

type layer struct {
	diffID string
	desc   v1.Descriptor
	dir    string // unpacked, overlay form
	tar    string // the blob, when the image store may not hold it yet
}

type state struct {
	layers  []layer
	cfg     v1.Config
	history []v1.History
	key     string            // cache chain
	args    map[string]string // ARGs in scope, with their values
}

func (st *state) lowerDirs() []string {
	out := make([]string, len(st.layers))
	for i, l := range st.layers {
		out[i] = l.dir
	}
	return out
}

// run is one build in progress.
type run struct {
	b        *Builder
	req      Request
	ctx      context.Context
	df       *dockerfile
	stages   []*state
	names    map[string]int
	global   map[string]string // global ARG values (for FROM)
	result   Result
	steps    int
	stepNum  int
	mounts   []string // read-only stage roots mounted for COPY --from
	lex      *shell.Lex
	lim      Limits
	buildTmp string
}

// Build builds req's Dockerfile and stores the image. Errors wrapping
// ErrFailed are the build's own (their message is for the user); others
// are the platform's.
func (b *Builder) Build(ctx context.Context, req Request) (*Result, error) {
	lim := b.Limits.withDefaults()
	ctx, cancel := context.WithTimeoutCause(ctx, lim.Timeout, fmt.Errorf("%w: the build did not finish within %s", ErrFailed, lim.Timeout))
	defer cancel()
	if req.Dockerfile == "" {
		req.Dockerfile = "Dockerfile"
	}
	if req.Out == nil {
		req.Out = io.Discard
	}
	for _, d := range []string{"layers", "keys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(req.Cache, d), 0o755); err != nil {
			return nil, fmt.Errorf("build cache: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Join(req.Cache, "tmp"), "build-")
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	r := &run{b: b, req: req, ctx: ctx, names: map[string]int{}, global: map[string]string{}, lim: lim, buildTmp: tmp}
	defer func() {
		for _, m := range r.mounts {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
		_ = os.RemoveAll(tmp)
	}()
	dfPath, err := containedPath(req.Context, req.Dockerfile)
	if err != nil {
		return nil, fmt.Errorf("%w: Dockerfile %s: %v", ErrFailed, req.Dockerfile, err)
	}
	src, err := readMax(dfPath, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFailed, req.Dockerfile, err)
	}
	if r.df, err = parseDockerfile(src); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	if err := applyIgnore(req.Context); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	r.lex = shell.NewLex(r.df.escape)
	for _, st := range r.df.stages {
		r.steps += 1 + len(st.steps)
	}
	if err := r.build(); err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return nil, cause
		}
		return nil, err
	}
	return &r.result, nil
}

// containedPath resolves rel inside root; symbolic links cannot leave it.
func containedPath(root, rel string) (string, error) {
	srcs, err := resolveSources(root, []string{rel})
	if err != nil {
		return "", err
	}
	return srcs[0].path(), nil
}

func readMax(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}

// applyIgnore removes from the context what its .dockerignore excludes.
func applyIgnore(dir string) error {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	var remove []string
	err = walkSorted(dir, "", func(rel string, fi fs.FileInfo) error {
		ok, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err == nil && ok {
			remove = append(remove, rel)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	for _, rel := range remove {
		if err := os.RemoveAll(filepath.Join(dir, rel)); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) printf(format string, a ...any) { fmt.Fprintf(r.req.Out, format, a...) }

func (r *run) build() error {
	for _, a := range r.df.globalArgs {
		if err := r.arg(a, r.global, nil); err != nil {
			return err
		}
	}
	for i, sd := range r.df.stages {
		st, err := r.from(sd)
		if err != nil {
			return err
		}
		for _, in := range sd.steps {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			r.stepNum++
			r.printf("Step %d/%d : %s\n", r.stepNum, r.steps, in.original)
			if err := r.step(st, in); err != nil {
				return err
			}
		}
		r.stages = append(r.stages, st)
		if sd.name != "" {
			r.names[sd.name] = i
		}
	}
	return r.commit(r.stages[len(r.stages)-1])
}

// envGetter is what variables expand from: ENV first, then ARGs.
func envGetter(st *state) shell.EnvGetter {
	env := make([]string, 0, len(st.args)+len(st.cfg.Env))
	for k, v := range st.args {
		env = append(env, k+"="+v)
	}
	env = append(env, st.cfg.Env...) // later entries win
	return shell.EnvsFromSlice(env)
}

func (r *run) expand(in *instruction, st *state, word string) (string, error) {
	s, _, err := r.lex.ProcessWord(word, envGetter(st))
	if err != nil {
		return "", in.errorf("%v", err)
	}
	return s, nil
}

func keyOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// arg handles ARG name[=default]: its value is the build argument when one
// is given, else the default (or, in a stage, the global ARG's value).
func (r *run) arg(in *instruction, into map[string]string, st *state) error {
	for _, a := range in.args {
		name, def, hasDef := strings.Cut(a, "=")
		if hasDef {
			env := shell.EnvsFromSlice(nil)
			if st != nil {
				env = envGetter(st)
			} else {
				var kv []string
				for k, v := range r.global {
					kv = append(kv, k+"="+v)
				}
				env = shell.EnvsFromSlice(kv)
			}
			v, _, err := r.lex.ProcessWord(def, env)
			if err != nil {
				return in.errorf("%v", err)
			}
			def = v
		} else if st != nil {
			def, hasDef = r.global[name]
		}
		if v, ok := r.req.Args[name]; ok {
			into[name] = v
		} else if hasDef {
			into[name] = def
		} else {
			into[name] = ""
		}
	}
	return nil
}

// from starts a stage: from an earlier stage, scratch, or an image.
func (r *run) from(sd *stage) (*state, error) {
	in := sd.from
	r.stepNum++
	r.printf("Step %d/%d : %s\n", r.stepNum, r.steps, in.original)
	name, _, err := r.lex.ProcessWord(in.args[0], shell.EnvsFromSlice(globalEnv(r.global)))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFailed, in.errorf("%v", err))
	}
	st := &state{args: map[string]string{}}
	if i, ok := r.names[strings.ToLower(name)]; ok {
		prev := r.stages[i]
		st.layers = append(st.layers, prev.layers...)
		st.cfg = cloneConfig(prev.cfg)
		st.history = append(st.history, prev.history...)
		st.key = prev.key
		return st, nil
	}
	if strings.EqualFold(name, "scratch") {
		st.key = keyOf("scratch")
		st.cfg.Env = []string{"PATH=" + defaultPath}
		return st, nil
	}
	id, err := r.resolveBase(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFailed, in.errorf("%v", err))
	}
	parts, err := r.b.Images.ImageParts(id)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", name, err)
	}
	im, err := r.b.Images.Image(id)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", name, err)
	}
	for i, l := range parts.Manifest.Layers {
		st.layers = append(st.layers, layer{diffID: parts.Config.RootFS.DiffIDs[i].String(), desc: l, dir: im.Layers[i]})
	}
	st.cfg = cloneConfig(parts.Config.Config)
	st.history = append(st.history, parts.Config.History...)
	st.key = keyOf("from", parts.Ref.ID)
	r.printf(" ---> %s\n", short(parts.Ref.ID))
	return st, nil
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func globalEnv(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func short(id string) string {
	h := strings.TrimPrefix(id, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func (r *run) resolveBase(name string) (string, error) {
	if strings.HasPrefix(name, "sha256:") {
		return name, nil
	}
	if r.b.Base == nil {
		return "", fmt.Errorf("unknown base image %q", name)
	}
	id, err := r.b.Base(name)
	if err != nil {
		return "", err
	}
	return id, nil
}

func cloneConfig(c v1.Config) v1.Config {
	out := c
	out.Env = append([]string(nil), c.Env...)
	out.Cmd = append([]string(nil), c.Cmd...)
	out.Entrypoint = append([]string(nil), c.Entrypoint...)
	out.Shell = append([]string(nil), c.Shell...)
	if c.Labels != nil {
		out.Labels = map[string]string{}
		for k, v := range c.Labels {
			out.Labels[k] = v
		}
	}
	if c.ExposedPorts != nil {
		out.ExposedPorts = map[string]struct{}{}
		for k := range c.ExposedPorts {
			out.ExposedPorts[k] = struct{}{}
		}
	}
	return out
}

// step runs or records one instruction of a stage.
func (r *run) step(st *state, in *instruction) error { return r.dispatch(st, in) }

func (r *run) fail(in *instruction, format string, a ...any) error {
	return fmt.Errorf("%w: %v", ErrFailed, in.errorf(format, a...))
}

func (r *run) dispatch(st *state, in *instruction) error {
	meta := func(history string) {
		st.key = keyOf(st.key, history)
		st.history = append(st.history, v1.History{Created: v1.Time{Time: time.Now().UTC()}, CreatedBy: history, EmptyLayer: true})
	}
	r.result.Steps++
	switch in.cmd {
	case "arg":
		if err := r.arg(in, st.args, st); err != nil {
			return fmt.Errorf("%w: %v", ErrFailed, err)
		}
		var kv []string
		for _, a := range in.args {
			name, _, _ := strings.Cut(a, "=")
			kv = append(kv, name+"="+st.args[name])
		}
		st.key = keyOf(st.key, "ARG "+strings.Join(kv, " "))
		return nil
	case "env", "label":
		// The parser gives (key, value, separator) triples.
		if len(in.args)%3 != 0 {
			return r.fail(in, "want KEY=value pairs")
		}
		var desc []string
		for i := 0; i < len(in.args); i += 3 {
			k, err := r.expand(in, st, in.args[i])
			if err != nil {
				return fmt.Errorf("%w: %v", ErrFailed, err)
			}
			v, err := r.expand(in, st, in.args[i+1])
			if err != nil {
				return fmt.Errorf("%w: %v", ErrFailed, err)
			}
			desc = append(desc, k+"="+v)
			if in.cmd == "env" {
				st.cfg.Env = setEnv(st.cfg.Env, k, v)
			} else {
				if st.cfg.Labels == nil {
					st.cfg.Labels = map[string]string{}
				}
				st.cfg.Labels[k] = v
			}
		}
		meta(strings.ToUpper(in.cmd) + " " + strings.Join(desc, " "))
		return nil
	case "maintainer":
		if st.cfg.Labels == nil {
			st.cfg.Labels = map[string]string{}
		}
		st.cfg.Labels["maintainer"] = strings.Join(in.args, " ")
		meta(in.original)
		return nil
	case "workdir":
		if len(in.args) != 1 {
			return r.fail(in, "want one directory")
		}
		d, err := r.expand(in, st, in.args[0])
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFailed, err)
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(orRoot(st.cfg.WorkingDir), d)
		}
		st.cfg.WorkingDir = filepath.Clean(d)
		meta("WORKDIR " + st.cfg.WorkingDir)
		return nil
	case "user":
		u, err := r.expand(in, st, strings.Join(in.args, " "))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFailed, err)
		}
		st.cfg.User = u
		meta("USER " + u)
		return nil
	case "expose":
		for _, a := range in.args {
			p, err := r.expand(in, st, a)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrFailed, err)
			}
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			if n, err := strconv.Atoi(strings.Split(p, "/")[0]); err != nil || n < 1 || n > 65535 {
				return r.fail(in, "invalid port %q", a)
			}
			if st.cfg.ExposedPorts == nil {
				st.cfg.ExposedPorts = map[string]struct{}{}
			}
			st.cfg.ExposedPorts[p] = struct{}{}
		}
		meta(in.original)
		return nil
	case "cmd", "entrypoint":
		args := r.commandArgs(st, in)
		if in.cmd == "cmd" {
			st.cfg.Cmd = args
		} else {
			st.cfg.Entrypoint = args
			st.cfg.Cmd = nil // ENTRYPOINT resets an inherited CMD
		}
		meta(in.original)
		return nil
	case "shell":
		if !in.json || len(in.args) == 0 {
			return r.fail(in, "want the JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]")
		}
		st.cfg.Shell = append([]string(nil), in.args...)
		meta(in.original)
		return nil
	case "stopsignal":
		s, err := r.expand(in, st, strings.Join(in.args, " "))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFailed, err)
		}
		st.cfg.StopSignal = s
		meta(in.original)
		return nil
	case "healthcheck":
		hc, err := r.healthcheck(st, in)
		if err != nil {
			return err
		}
		st.cfg.Healthcheck = hc
		meta(in.original)
		return nil
	case "run":
		return r.runStep(st, in)
	case "copy", "add":
		return r.copyStep(st, in)
	}
	return r.fail(in, "not supported")
}

func orRoot(d string) string {
	if d == "" {
		return "/"
	}
	return d
}

func setEnv(env []string, k, v string) []string {
	out := env[:0:0]
	for _, e := range env {
		if name, _, _ := strings.Cut(e, "="); name != k {
			out = append(out, e)
		}
	}
	return append(out, k+"="+v)
}

// commandArgs is a CMD, ENTRYPOINT or RUN's argument vector: the exec
// form as written, the shell form through SHELL.
func (r *run) commandArgs(st *state, in *instruction) []string {
	if in.json {
		return append([]string(nil), in.args...)
	}
	sh := st.cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string(nil), sh...), strings.Join(in.args, " "))
}

func (r *run) healthcheck(st *state, in *instruction) (*v1.HealthConfig, error) {
	if len(in.args) == 0 {
		return nil, r.fail(in, "want NONE or CMD <command>")
	}
	typ := strings.ToUpper(in.args[0])
	if typ == "NONE" {
		return &v1.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if typ != "CMD" || len(in.args) < 2 {
		return nil, r.fail(in, "want NONE or CMD <command>")
	}
	hc := &v1.HealthConfig{}
	if in.json {
		hc.Test = append([]string{"CMD"}, in.args[1:]...)
	} else {
		hc.Test = []string{"CMD-SHELL", strings.Join(in.args[1:], " ")}
	}
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{{"interval", &hc.Interval}, {"timeout", &hc.Timeout}, {"start-period", &hc.StartPeriod}} {
		if v, ok := in.flag(f.name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, r.fail(in, "--%s=%s: %v", f.name, v, err)
			}
			*f.dst = d
		}
	}
	if v, ok := in.flag("retries"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, r.fail(in, "--retries=%s: want a whole number", v)
		}
		hc.Retries = n
	}
	return hc, nil
}

// cached finds the layer a step with this key made before, and marks the
// key as used (see TrimCache).
func (r *run) cached(key string) (layer, bool) {
	keyFile := filepath.Join(r.req.Cache, "keys", key)
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return layer{}, false
	}
	var l layer
	var rec cacheRecord
	if json.Unmarshal(b, &rec) != nil {
		return layer{}, false
	}
	dir := filepath.Join(r.req.Cache, "layers", strings.TrimPrefix(rec.DiffID, "sha256:"))
	l = layer{diffID: rec.DiffID, dir: filepath.Join(dir, "root"), tar: filepath.Join(dir, "layer.tar"),
		desc: v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: rec.Size}}
	l.desc.Digest, err = v1.NewHash(rec.DiffID)
	if err != nil {
		return layer{}, false
	}
	if fi, err := os.Stat(l.tar); err != nil || fi.Size() != rec.Size {
		return layer{}, false
	}
	if fi, err := os.Stat(l.dir); err != nil || !fi.IsDir() {
		return layer{}, false
	}
	touchKey(keyFile)
	return l, true
}

type cacheRecord struct {
	DiffID string `json:"diff_id"`
	Size   int64  `json:"size"`
}

// addLayer turns dir (a finished step's layer in overlay form) into a
// cached layer under key and stacks it on st.
func (r *run) addLayer(st *state, key, dir, createdBy string) error {
	tarTmp := filepath.Join(r.buildTmp, "layer-"+randHex(8)+".tar")
	f, err := os.Create(tarTmp)
	if err != nil {
		return err
	}
	digest, size, err := writeLayer(f, dir, r.lim.MaxLayerBytes)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, errLayerTooLarge) {
			return fmt.Errorf("%w: %s: %v", ErrFailed, createdBy, err)
		}
		return fmt.Errorf("writing the layer: %w", err)
	}
	hexd := strings.TrimPrefix(digest, "sha256:")
	final := filepath.Join(r.req.Cache, "layers", hexd)
	if _, err := os.Stat(final); err != nil {
		stage := filepath.Join(r.buildTmp, "stage-"+hexd)
		if err := os.Mkdir(stage, 0o755); err != nil {
			return err
		}
		if err := os.Rename(dir, filepath.Join(stage, "root")); err != nil {
			return err
		}
		if err := os.Rename(tarTmp, filepath.Join(stage, "layer.tar")); err != nil {
			return err
		}
		if err := os.Rename(stage, final); err != nil && !os.IsExist(err) && !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
	}
	rec, _ := json.Marshal(cacheRecord{DiffID: digest, Size: size})
	keyTmp := filepath.Join(r.buildTmp, "key-"+key)
	if err := os.WriteFile(keyTmp, rec, 0o644); err != nil {
		return err
	}
	if err := os.Rename(keyTmp, filepath.Join(r.req.Cache, "keys", key)); err != nil {
		return err
	}
	l, ok := r.cached(key)
	if !ok {
		return fmt.Errorf("layer %s vanished from the cache", short(digest))
	}
	r.push(st, key, l, createdBy)
	return nil
}

// reuse stacks the cached layer of key on st, if there is one.
func (r *run) reuse(st *state, key string, in *instruction) bool {
	l, ok := r.cached(key)
	if ok {
		r.printf(" ---> Using cache\n ---> %s\n", short(l.diffID))
		r.result.Cached++
		r.push(st, key, l, in.original)
	}
	return ok
}

func (r *run) push(st *state, key string, l layer, createdBy string) {
	st.layers = append(st.layers, l)
	st.key = key
	st.history = append(st.history, v1.History{Created: v1.Time{Time: time.Now().UTC()}, CreatedBy: createdBy})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runStep runs a RUN instruction in a build container whose writable
// layer becomes the step's layer.
func (r *run) runStep(st *state, in *instruction) error {
	args := r.commandArgs(st, in)
	var env []string
	for k, v := range st.args {
		env = append(env, k+"="+v)
	}
	key := keyOf(st.key, "RUN", strings.Join(args, "\x00"), strings.Join(sortedStrings(env), "\x00"))
	if r.reuse(st, key, in) {
		return nil
	}
	if len(st.layers) == 0 {
		return r.fail(in, "FROM scratch has no shell or programs to run; start FROM a base image")
	}
	upper, err := os.MkdirTemp(r.buildTmp, "upper-")
	if err != nil {
		return err
	}
	if err := os.Chmod(upper, 0o755); err != nil {
		return err
	}
	uid, gid := lookupUser(st.lowerDirs(), st.cfg.User)
	runEnv := append([]string(nil), st.cfg.Env...)
	for _, e := range env { // build args reach RUN, under ENV of the same name
		name, _, _ := strings.Cut(e, "=")
		if !hasEnv(runEnv, name) {
			runEnv = append(runEnv, e)
		}
	}
	if !hasEnv(runEnv, "PATH") {
		runEnv = append(runEnv, "PATH="+defaultPath)
	}
	id := "build-" + randHex(6)
	r.printf(" ---> Running in %s\n", id)
	out := r.req.Out
	netns := ""
	if r.b.Network {
		netns = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	}
	c, err := r.b.Runtime.Start(r.ctx, runtime.Spec{
		ID: id, Lowers: st.lowerDirs(), Args: args, Env: runEnv, Cwd: orRoot(st.cfg.WorkingDir),
		Hostname: "build", UID: uid, GID: gid,
		MemoryLimit: r.lim.Memory, PidsLimit: r.lim.Pids, CPUShares: r.lim.CPUShares,
		Init: r.b.Init, Upper: upper, Stdout: out, Stderr: out, NetnsPath: netns,
	})
	if err != nil {
		if r.ctx.Err() != nil {
			return context.Cause(r.ctx)
		}
		return r.fail(in, "could not start: %v", err)
	}
	wctx, stopWatch := context.WithCancel(r.ctx)
	defer stopWatch()
	disk := make(chan string, 1)
	go func() {
		disk <- diskWatch{dir: upper, limit: r.lim.MaxLayerBytes, reserve: r.lim.DiskReserve, every: 250 * time.Millisecond}.run(wctx)
	}()
	kill := func() {
		_ = c.Signal(syscall.SIGKILL)
		_ = c.SignalAll(syscall.SIGKILL)
		c.Wait()
	}
	select {
	case <-c.Done():
	case <-r.ctx.Done():
		kill()
		return context.Cause(r.ctx)
	case why := <-disk:
		kill()
		if why == "" { // the build ended meanwhile
			return context.Cause(r.ctx)
		}
		return r.fail(in, "%s", why)
	}
	exit := c.Wait()
	switch {
	case exit.OOMKilled:
		return r.fail(in, "the command was killed: out of memory (the build's limit is %d MB)", r.lim.Memory>>20)
	case exit.Code != 0:
		return fmt.Errorf("%w: Dockerfile line %d: The command '%s' returned a non-zero code: %d", ErrFailed, in.line, strings.Join(args, " "), exit.Code)
	case exit.Err != nil:
		return fmt.Errorf("build container: %w", exit.Err)
	}
	return r.addLayer(st, key, upper, in.original)
}

func hasEnv(env []string, name string) bool {
	for _, e := range env {
		if n, _, _ := strings.Cut(e, "="); n == name {
			return true
		}
	}
	return false
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// copyStep runs COPY and ADD: files from the context or (COPY --from) an
// earlier stage or image into a new layer.
func (r *run) copyStep(st *state, in *instruction) error {
	if len(in.args) < 2 {
		return r.fail(in, "want at least one source and a destination")
	}
	var words []string
	for _, a := range in.args {
		w, err := r.expand(in, st, a)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFailed, err)
		}
		words = append(words, w)
	}
	srcArgs, dest := words[:len(words)-1], words[len(words)-1]
	if in.cmd == "add" {
		for _, s := range srcArgs {
			if strings.Contains(s, "://") || strings.HasPrefix(s, "git@") {
				return r.fail(in, "remote sources (%s) are not supported: builds do not reach the network; add the file to the repository", s)
			}
		}
	}
	root, fromDesc := r.req.Context, "context"
	var own *owner
	if from, ok := in.flag("from"); ok {
		var err error
		if root, err = r.stageRoot(in, st, from); err != nil {
			return err
		}
		fromDesc = "from " + from
	} else {
		own = &owner{0, 0}
	}
	if v, ok := in.flag("chown"); ok {
		v, err := r.expand(in, st, v)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFailed, err)
		}
		uid, gid, err := image.LookupUser(st.lowerDirs(), v)
		if err != nil {
			return r.fail(in, "--chown=%s: %v", v, err)
		}
		own = &owner{uid, gid}
	}
	var chmod *fs.FileMode
	if v, ok := in.flag("chmod"); ok {
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil || n > 0o7777 {
			return r.fail(in, "--chmod=%s: want an octal mode such as 0755", v)
		}
		m := fs.FileMode(n&0o777) | modeBits(n)
		chmod = &m
	}
	srcs, err := resolveSources(root, srcArgs)
	if err != nil {
		return r.fail(in, "%v", err)
	}
	if !filepath.IsAbs(dest) {
		dest = filepath.Join(orRoot(st.cfg.WorkingDir), dest) + map[bool]string{true: "/"}[strings.HasSuffix(dest, "/")]
	}
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "%s\n", s.rel)
		if err := hashTree(h, s.path()); err != nil {
			return fmt.Errorf("hashing %s: %w", s.rel, err)
		}
	}
	ownDesc := "keep"
	if own != nil {
		ownDesc = fmt.Sprintf("%d:%d", own.uid, own.gid)
	}
	chmodDesc := ""
	if chmod != nil {
		chmodDesc = chmod.String()
	}
	key := keyOf(st.key, strings.ToUpper(in.cmd), fromDesc, dest, ownDesc, chmodDesc, hex.EncodeToString(h.Sum(nil)))
	if r.reuse(st, key, in) {
		return nil
	}
	dir, err := os.MkdirTemp(r.buildTmp, "copy-")
	if err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	lowers := st.lowerDirs()
	isDir := func(rel string) bool {
		fi, ok := lowerStat(lowers, rel)
		return ok && fi.IsDir()
	}
	attrs := func(rel string) (fs.FileInfo, bool) { return lowerStat(lowers, rel) }
	if in.cmd == "add" {
		// ADD unpacks local tar archives (plain, gzip or zstd) into dest.
		var plain []source
		for _, s := range srcs {
			if !isArchive(s.path()) {
				plain = append(plain, s)
				continue
			}
			if err := r.unpackInto(dir, s, dest, attrs); err != nil {
				return r.fail(in, "%s: %v", s.rel, err)
			}
		}
		srcs = plain
	}
	if len(srcs) > 0 {
		if err := copyInto(dir, srcs, dest, own, chmod, isDir, attrs); err != nil {
			return r.fail(in, "%v", err)
		}
	}
	return r.addLayer(st, key, dir, in.original)
}

// isArchive reports whether path is a regular file holding a tar archive,
// compressed with gzip or zstd or not at all.
func isArchive(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case n >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return true
	case n >= 4 && string(head[:4]) == "\x28\xb5\x2f\xfd":
		return true
	}
	return n >= 262 && string(head[257:262]) == "ustar"
}

// unpackInto unpacks an archive with the hardened unpacker, then copies
// its tree (owners and modes as archived) into the layer at dest.
func (r *run) unpackInto(layer string, s source, dest string, attrs func(rel string) (fs.FileInfo, bool)) error {
	f, err := os.Open(s.path())
	if err != nil {
		return err
	}
	defer f.Close()
	tmp := filepath.Join(r.buildTmp, "add-"+randHex(6))
	if err := image.UnpackWithLimits(f, tmp, image.Limits{MaxBytes: r.lim.MaxLayerBytes}); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	destRel := relClean(dest)
	if err := mkParents(layer, path.Join(destRel, "x"), attrs); err != nil {
		return err
	}
	target := filepath.Join(layer, filepath.FromSlash(destRel))
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	return walkSorted(tmp, "", func(rel string, fi fs.FileInfo) error {
		return copyEntry(filepath.Join(tmp, rel), filepath.Join(target, rel), fi, nil, nil)
	})
}

func modeBits(n uint64) fs.FileMode {
	var m fs.FileMode
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// lowerStat finds rel in the topmost layer that has it.
func lowerStat(lowersBottomFirst []string, rel string) (fs.FileInfo, bool) {
	for i := len(lowersBottomFirst) - 1; i >= 0; i-- {
		p, err := containedIn(lowersBottomFirst[i], rel)
		if err != nil {
			continue
		}
		if fi, err := os.Lstat(p); err == nil {
			if fi.Mode()&fs.ModeCharDevice != 0 {
				return nil, false // a whiteout
			}
			return fi, true
		}
	}
	return nil, false
}

// containedIn resolves rel inside one layer directory: its symbolic links
// cannot lead out of it.
func containedIn(root, rel string) (string, error) {
	return securejoin.SecureJoin(root, relClean(rel))
}

// stageRoot mounts, read-only, the root filesystem of an earlier stage (by
// name or index) or of an image, for COPY --from.
func (r *run) stageRoot(in *instruction, st *state, from string) (string, error) {
	var layers []string
	if i, ok := r.names[strings.ToLower(from)]; ok {
		layers = r.stages[i].lowerDirs()
	} else if n, err := strconv.Atoi(from); err == nil && n >= 0 && n < len(r.stages) {
		layers = r.stages[n].lowerDirs()
	} else {
		id, err := r.resolveBase(from)
		if err != nil {
			return "", r.fail(in, "--from=%s: no earlier stage or image has that name", from)
		}
		im, err := r.b.Images.Image(id)
		if err != nil {
			return "", fmt.Errorf("image %s: %w", from, err)
		}
		layers = im.Layers
	}
	mnt, err := os.MkdirTemp(r.buildTmp, "from-")
	if err != nil {
		return "", err
	}
	empty, err := os.MkdirTemp(r.buildTmp, "empty-")
	if err != nil {
		return "", err
	}
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`)
	var lower []string
	for i := len(layers) - 1; i >= 0; i-- {
		lower = append(lower, esc.Replace(layers[i]))
	}
	lower = append(lower, esc.Replace(empty)) // a read-only overlay needs two lowers
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "lowerdir="+strings.Join(lower, ":")); err != nil {
		return "", fmt.Errorf("mounting stage %s: %w", from, err)
	}
	r.mounts = append(r.mounts, mnt)
	return mnt, nil
}

// commit writes st as an image into the store.
func (r *run) commit(st *state) error {
	cfg := v1.ConfigFile{
		Architecture: goruntime.GOARCH, OS: "linux", Created: v1.Time{Time: time.Now().UTC()},
		Config: st.cfg, History: st.history, RootFS: v1.RootFS{Type: "layers"},
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	blobs := map[string]string{}
	for _, l := range st.layers {
		h, err := v1.NewHash(l.diffID)
		if err != nil {
			return err
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, h)
		m.Layers = append(m.Layers, l.desc)
		if l.tar != "" {
			blobs[l.desc.Digest.String()] = l.tar
		}
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(cb)
	cd := "sha256:" + hex.EncodeToString(sum[:])
	ch, _ := v1.NewHash(cd)
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cb)), Digest: ch}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	src := image.BlobSourceFunc(func(d string) (io.ReadCloser, error) {
		if d == cd {
			return io.NopCloser(strings.NewReader(string(cb))), nil
		}
		if p, ok := blobs[d]; ok {
			return os.Open(p)
		}
		return nil, fmt.Errorf("blob %s: %w", d, image.ErrNotFound)
	})
	if r.req.Hold != nil {
		r.req.Hold(cd)
	}
	ref, err := r.b.Images.Put(mb, string(types.OCIManifestSchema1), src)
	if err != nil {
		return fmt.Errorf("storing the image: %w", err)
	}
	r.result.Image = ref.ID
	r.result.Config = image.Config{Entrypoint: st.cfg.Entrypoint, Cmd: st.cfg.Cmd, Env: st.cfg.Env,
		User: st.cfg.User, WorkingDir: st.cfg.WorkingDir, StopSignal: st.cfg.StopSignal, Labels: st.cfg.Labels}
	r.printf("Successfully built %s\n", short(ref.ID))
	return nil
}
