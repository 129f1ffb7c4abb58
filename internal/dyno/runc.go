package dyno

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/network"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/runtime"
)

// UnprivilegedUID runs dynos whose image says to run as root: no dyno runs
// as root, as on Heroku.
const UnprivilegedUID = 10000

// ContainerRunner runs dynos as containers: the release's image from the
// image store, an own network namespace on the dyno bridge, and runc.
type ContainerRunner struct {
	Images  *image.Store
	Net     *network.Manager
	Runtime *runtime.Runtime
	// Init is a static binary run as each dyno's PID 1 (see runtime.Spec);
	// empty runs the command as PID 1.
	Init string
	// MemoryLimit and PidsLimit, when set, give a dyno's hard memory limit
	// in bytes and its process+thread cap instead of those of its size
	// (tests use small ones). nil: the size's.
	MemoryLimit func(platform.Size) int64
	PidsLimit   func(platform.Size) int64
}

// Start starts u's container. Nothing is left behind when it fails.
func (r *ContainerRunner) Start(ctx context.Context, u *Unit) (Process, error) {
	img, err := r.Images.Image(u.Image)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", u.Image, err)
	}
	args := command(img.Config, u.Command)
	if len(args) == 0 {
		return nil, fmt.Errorf("image %s has neither ENTRYPOINT nor CMD, and the release gives no command", u.Image)
	}
	uid, gid := lookupUser(img.Layers, img.Config.User)
	memory, pids := hardLimitMB(u.Size.MemoryMB)<<20, int64(u.Size.Processes)
	if r.MemoryLimit != nil {
		memory = r.MemoryLimit(u.Size)
	}
	if r.PidsLimit != nil {
		pids = r.PidsLimit(u.Size)
	}
	id := containerID(u)
	ep, err := r.Net.Attach(id)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	spec := runtime.Spec{
		ID: id, Lowers: img.Layers, Args: args, Env: environ(img.Config.Env, u.Env), Cwd: img.Config.WorkingDir,
		Hostname: u.Name, UID: uid, GID: gid,
		MemoryLimit: memory, PidsLimit: pids,
		CPUShares: uint64(u.Size.CPUShare * 1024), NetnsPath: ep.NetnsPath, Stdout: u.Stdout, Stderr: u.Stderr,
		Init: r.Init, Stdin: u.Stdin,
	}
	if u.Terminal {
		spec.Terminal = &runtime.Winsize{Cols: u.Cols, Rows: u.Rows}
	}
	c, err := r.Runtime.Start(ctx, spec)
	if err != nil {
		r.Net.Detach(id)
		return nil, err
	}
	// The command as given (a one-off's, a Procfile's), as Heroku shows it;
	// else the image's.
	p := &container{c: c, net: r.Net, id: id, cmd: cmp.Or(strings.TrimSpace(u.Command), strings.Join(args, " "))}
	if u.Port > 0 {
		p.addr = ep.Addr.String() + ":" + strconv.Itoa(u.Port)
	}
	return p, nil
}

// hardLimitMB is the memory at which a dyno is killed (R15): twice its
// quota, or 1.2 times for the largest sizes, as Heroku does.
func hardLimitMB(quota int) int64 {
	if quota > 2560 {
		return int64(quota) * 12 / 10
	}
	return int64(quota) * 2
}

// command is what a dyno runs: the release's (or a one-off's) command, or
// else the image's ENTRYPOINT and CMD. A command is a shell command line,
// as on Heroku; one with nothing for a shell to interpret is run directly,
// so that images without a shell (FROM scratch) can run one too.
func command(cfg image.Config, cmd string) []string {
	if cmd == "" {
		return append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	}
	if base, ok := strings.CutSuffix(cmd, exitStatusEcho); ok {
		// `heroku run -x CMD`: the status line must come even when CMD
		// ends the shell (exit 3) or a Ctrl-C kills it, so CMD runs in a
		// subshell, and the outer shell survives SIGINT (a subshell
		// resets the handler: CMD gets SIGINT as usual).
		return []string{"/bin/sh", "-c", "trap : INT; (\n" + base + "\n)" + exitStatusEcho}
	}
	if strings.ContainsAny(cmd, "$|&;<>()`'\"\\*?[]~#=%!{}\n\t") {
		return []string{"/bin/sh", "-c", cmd}
	}
	return strings.Fields(cmd)
}

// exitStatusEcho is what `heroku run -x` (and `skiff run -x`) append to
// a command, to learn its exit status from the line it prints.
const exitStatusEcho = ` ; echo "` + "\uFFFF" + ` heroku-command-exit-status: $?"`

// environ merges the image's environment with the dyno's (config vars,
// PORT, DYNO), the dyno's winning, in a stable order.
func environ(imageEnv []string, env map[string]string) []string {
	m := map[string]string{}
	for _, kv := range imageEnv {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	maps.Copy(m, env)
	if _, ok := m["PATH"]; !ok {
		m["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	if _, ok := m["HOME"]; !ok {
		m["HOME"] = "/"
	}
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// lookupUser resolves an image's USER ("name", "uid", "name:group",
// "uid:gid") against the image's /etc/passwd and /etc/group. Root, or a
// name that cannot be resolved, becomes UnprivilegedUID.
func lookupUser(layersBottomFirst []string, user string) (uint32, uint32) {
	uid, gid, err := image.LookupUser(layersBottomFirst, user)
	if err != nil || uid <= 0 {
		return UnprivilegedUID, UnprivilegedUID
	}
	return uint32(uid), uint32(gid)
}

// containerID names a dyno's container and netns: the dyno name and a
// random suffix, so a restarting dyno never collides with its old
// container while that one is still being removed.
func containerID(u *Unit) string {
	b := make([]byte, 4)
	rand.Read(b)
	app := u.AppID
	if len(app) > 8 {
		app = app[:8]
	}
	return app + "." + u.Name + "." + hex.EncodeToString(b)
}

// container is a running dyno container.
type container struct {
	c    *runtime.Container
	net  *network.Manager
	id   string
	cmd  string
	addr string

	once sync.Once
	exit Exit
}

func (p *container) Wait() Exit {
	ex := p.c.Wait()
	p.once.Do(func() {
		p.exit = Exit{Code: ex.Code, OOM: ex.OOMKilled, Err: ex.Err}
		if err := p.net.Detach(p.id); err != nil && p.exit.Err == nil {
			p.exit.Err = fmt.Errorf("network: %w", err)
		}
	})
	return p.exit
}

// Signal signals every process of the dyno, as Heroku's dyno manager does.
func (p *container) Signal(sig syscall.Signal) error { return p.c.SignalAll(sig) }
func (p *container) Addr() string                    { return p.addr }

// MemoryUsage is the container's memory cgroup usage: RSS, cache and swap.
func (p *container) MemoryUsage() (uint64, error) {
	st, err := p.c.Stats()
	if err != nil {
		return 0, err
	}
	return st.MemoryUsage + st.MemorySwap, nil
}
func (p *container) Command() string { return p.cmd }
