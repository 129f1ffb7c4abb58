package runtime

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests run real containers with runc: they need root and runc.

const crashHelperEnv = "SKIFF_RUNTIME_TEST_CRASH_HELPER"

var (
	imageOnce sync.Once
	imageDir  string // the lower layer with /app, shared by all tests
	imageErr  error
	imageTmp  string
)

func TestMain(m *testing.M) {
	if os.Getenv(crashHelperEnv) != "" {
		crashHelper()
		return
	}
	code := m.Run()
	if imageTmp != "" {
		os.RemoveAll(imageTmp)
	}
	os.Exit(code)
}

// testImage builds testdata/app once per test binary run into a lower
// layer laid out like a minimal image.
func testImage(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "runtime tests need root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		skip(t, "runtime tests need runc")
	}
	imageOnce.Do(func() {
		imageTmp, imageErr = os.MkdirTemp("", "skiff-runtime-image-")
		if imageErr != nil {
			return
		}
		dir := filepath.Join(imageTmp, "layer")
		for _, d := range []string{"", "etc", "proc", "dev", "sys", "home", "home/app"} {
			if imageErr = os.Mkdir(filepath.Join(dir, d), 0o755); imageErr != nil {
				return
			}
		}
		if imageErr = os.Mkdir(filepath.Join(dir, "tmp"), 0o755); imageErr != nil {
			return
		}
		if imageErr = os.Chmod(filepath.Join(dir, "tmp"), 0o1777|os.ModeSticky); imageErr != nil {
			return
		}
		if imageErr = os.Chown(filepath.Join(dir, "home/app"), 10000, 10000); imageErr != nil {
			return
		}
		files := map[string]string{
			"etc/passwd": "root:x:0:0:root:/root:/app\napp:x:10000:10000:app:/home/app:/app\n",
			"etc/group":  "root:x:0:\napp:x:10000:\n",
		}
		for name, content := range files {
			if imageErr = os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); imageErr != nil {
				return
			}
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "app"), "./testdata/app")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			imageErr = fmt.Errorf("building testdata/app: %v\n%s", err, out)
			return
		}
		imageDir = dir
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageDir
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func testConfig(t *testing.T) Config {
	base := t.TempDir()
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	return Config{
		Root:         filepath.Join(base, "state"),
		Dir:          filepath.Join(base, "containers"),
		CgroupParent: "skiff-test-" + name + "-" + randomSuffix(),
	}
}

// newRuntime returns a Runtime with its own dirs and cgroup parent. At the
// end of the test it checks that the containers' own cleanup left nothing
// behind, then that Reap removes the (empty) cgroup parent too.
func newRuntime(t *testing.T) *Runtime {
	t.Helper()
	testImage(t)
	r, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if left := leftovers(r, false); len(left) > 0 {
			t.Errorf("left behind after the containers exited:\n  %s", strings.Join(left, "\n  "))
		}
		if err := r.Reap(); err != nil {
			t.Errorf("Reap: %v", err)
		}
		if left := leftovers(r, true); len(left) > 0 {
			t.Errorf("left behind after Reap:\n  %s", strings.Join(left, "\n  "))
		}
	})
	return r
}

// leftovers lists mounts, runc containers, cgroups and files of r.
// withParent also counts the (empty) CgroupParent cgroups.
func leftovers(r *Runtime, withParent bool) []string {
	var left []string
	if mps, err := mountsUnder(r.cfg.Dir); err != nil || len(mps) > 0 {
		left = append(left, fmt.Sprintf("mounts %v %v", mps, err))
	}
	if out, err := r.runcOutput("list", "--quiet"); err != nil || strings.TrimSpace(out) != "" {
		left = append(left, fmt.Sprintf("runc containers %q %v", out, err))
	}
	for _, d := range []string{r.cfg.Dir, r.cfg.Root} {
		if entries, _ := os.ReadDir(d); len(entries) > 0 {
			left = append(left, fmt.Sprintf("%d entries in %s (%s...)", len(entries), d, entries[0].Name()))
		}
	}
	for i := range r.cg {
		parent := r.cg[i].dir(r.cfg.CgroupParent)
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		if withParent {
			left = append(left, "cgroup "+parent)
		}
		for _, e := range entries {
			if e.IsDir() {
				left = append(left, "cgroup "+filepath.Join(parent, e.Name()))
			}
		}
	}
	return left
}

// syncBuffer is an io.Writer that tests can read while a container writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) waitFor(t *testing.T, c *Container, s string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(b.String(), s) {
		select {
		case <-c.Done():
			t.Fatalf("container exited (%+v) before printing %q; output %q", c.Wait(), s, b.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q; output %q", s, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var idCounter struct {
	sync.Mutex
	n int
}

func testID(prefix string) string {
	idCounter.Lock()
	defer idCounter.Unlock()
	idCounter.n++
	return fmt.Sprintf("%s-%d-%s", prefix, idCounter.n, randomSuffix())
}

// baseSpec runs /app with args as uid 10000.
func baseSpec(t *testing.T, args ...string) Spec {
	return Spec{
		ID:     testID("t"),
		Lowers: []string{testImage(t)},
		Args:   append([]string{"/app"}, args...),
		Env:    []string{"PATH=/usr/bin:/bin", "HOME=/home/app"},
		UID:    10000, GID: 10000,
		MemoryLimit: 256 << 20,
		PidsLimit:   100,
	}
}

// start starts s and makes sure the container is gone at the end of the
// test (before newRuntime's checks run).
func start(t *testing.T, r *Runtime, s Spec) *Container {
	t.Helper()
	c, err := r.Start(context.Background(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-c.Done():
		default:
			_ = c.Signal(syscall.SIGKILL)
		}
		if e := c.Wait(); e.Err != nil {
			t.Errorf("container %s: %v", c.ID(), e.Err)
		}
	})
	return c
}

func run(t *testing.T, r *Runtime, s Spec) (Exit, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	s.Stdout, s.Stderr = &stdout, &stderr
	c := start(t, r, s)
	e := c.Wait()
	return e, stdout.String(), stderr.String()
}

func TestOutputAndExitCode(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	e, out, errOut := run(t, r, baseSpec(t, "echo"))
	if e.Code != 42 || e.Signal != 0 || e.OOMKilled || e.Err != nil {
		t.Errorf("exit = %+v, want code 42", e)
	}
	if out != "hello stdout\n" || errOut != "hello stderr\n" {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}

func TestStdin(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	s := baseSpec(t, "stdin")
	s.Stdin = strings.NewReader("hello stdin\n")
	if e, out, _ := run(t, r, s); e.Code != 0 || out != "hello stdin\n" {
		t.Errorf("exit %+v, stdout %q", e, out)
	}
	// A reader that never returns does not hold up Wait.
	pr, pw := io.Pipe()
	defer pw.Close()
	s = baseSpec(t, "echo")
	s.Stdin = pr
	began := time.Now()
	if e, _, _ := run(t, r, s); e.Code != 42 || time.Since(began) > 3*time.Second {
		t.Errorf("exit %+v after %v", e, time.Since(began))
	}
}

func TestSameWriterForBothStreams(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	var b bytes.Buffer // not safe for concurrent use: Start must serialise
	s := baseSpec(t, "echo")
	s.Stdout, s.Stderr = &b, &b
	c := start(t, r, s)
	if e := c.Wait(); e.Code != 42 {
		t.Errorf("exit = %+v", e)
	}
	if got := b.String(); !strings.Contains(got, "hello stdout\n") || !strings.Contains(got, "hello stderr\n") {
		t.Errorf("output %q", got)
	}
	// Wait is idempotent.
	if e := c.Wait(); e.Code != 42 {
		t.Errorf("second Wait = %+v", e)
	}
	if err := c.Signal(syscall.SIGTERM); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Signal after exit = %v, want ErrNotRunning", err)
	}
	if _, err := c.Stats(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Stats after exit = %v, want ErrNotRunning", err)
	}
}

type info struct {
	Args       []string `json:"args"`
	Env        []string `json:"env"`
	Cwd        string   `json:"cwd"`
	Hostname   string   `json:"hostname"`
	UID        int      `json:"uid"`
	GID        int      `json:"gid"`
	Pid        int      `json:"pid"`
	CapEff     string   `json:"capeff"`
	CapBnd     string   `json:"capbnd"`
	NoNewPrivs string   `json:"nonewprivs"`
	Seccomp    string   `json:"seccomp"`
	Ifaces     []string `json:"ifaces"`
	Nofile     uint64   `json:"nofile"`
	NofileMax  uint64   `json:"nofile_max"`
	TmpMode    string   `json:"tmp_mode"`
	TmpWrite   bool     `json:"tmp_write"`
}

func runInfo(t *testing.T, r *Runtime, s Spec) info {
	t.Helper()
	e, out, errOut := run(t, r, s)
	if e.Code != 0 || e.Err != nil {
		t.Fatalf("exit %+v, stdout %q, stderr %q", e, out, errOut)
	}
	var i info
	if err := json.Unmarshal([]byte(out), &i); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	return i
}

func TestProcessIdentityAndIsolation(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	s := baseSpec(t, "info", "a b", "c")
	s.Env = append(s.Env, "PORT=5000", "DYNO=web.1")
	s.Cwd = "/home/app"
	s.Hostname = "web-1"
	i := runInfo(t, r, s)

	if strings.Join(i.Args, "|") != "a b|c" {
		t.Errorf("args %q", i.Args)
	}
	if strings.Join(i.Env, " ") != "PATH=/usr/bin:/bin HOME=/home/app PORT=5000 DYNO=web.1" {
		t.Errorf("env %q", i.Env)
	}
	if i.Cwd != "/home/app" || i.Hostname != "web-1" {
		t.Errorf("cwd %q hostname %q", i.Cwd, i.Hostname)
	}
	if i.UID != 10000 || i.GID != 10000 || i.Pid != 1 {
		t.Errorf("uid %d gid %d pid %d", i.UID, i.GID, i.Pid)
	}
	if i.CapEff != "0000000000000000" || i.CapBnd != "0000000000000000" {
		t.Errorf("CapEff %s CapBnd %s, want none", i.CapEff, i.CapBnd)
	}
	if i.NoNewPrivs != "1" || i.Seccomp != "2" {
		t.Errorf("NoNewPrivs %s Seccomp %s", i.NoNewPrivs, i.Seccomp)
	}
	if strings.Join(i.Ifaces, " ") != "lo:up" {
		t.Errorf("interfaces %q, want only lo, up", i.Ifaces)
	}
	if i.Nofile != r.nofile || i.NofileMax != r.nofile || r.nofile == 0 || r.nofile > defaultNofile {
		t.Errorf("nofile %d/%d, runtime %d", i.Nofile, i.NofileMax, r.nofile)
	}
	if i.TmpMode != "1777" || !i.TmpWrite {
		t.Errorf("/tmp mode %s writable %v", i.TmpMode, i.TmpWrite)
	}
}

func TestTmpIsMadeWritable(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	// An image whose /tmp is 0755, and one without /tmp.
	for _, mode := range []os.FileMode{0o755, 0} {
		layer := t.TempDir()
		if mode != 0 {
			if err := os.Mkdir(filepath.Join(layer, "tmp"), mode); err != nil {
				t.Fatal(err)
			}
		}
		s := baseSpec(t, "info")
		s.Lowers = append(s.Lowers, layer)
		i := runInfo(t, r, s)
		if i.TmpMode != "1777" || !i.TmpWrite {
			t.Errorf("image /tmp %o: /tmp mode %s writable %v", mode, i.TmpMode, i.TmpWrite)
		}
		if fi, err := os.Stat(filepath.Join(layer, "tmp")); mode != 0 && (err != nil || fi.Mode().Perm() != mode) {
			t.Errorf("lower /tmp changed: %v %v", fi.Mode(), err)
		}
	}
}

func TestEphemeralFilesystem(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	lower := testImage(t)
	s := baseSpec(t, "write", "/newfile", "/tmp/x")
	s.UID, s.GID = 0, 0 // root (without capabilities) may write to /
	var out syncBuffer
	s.Stdout, s.Stderr = &out, &out
	c := start(t, r, s)
	out.waitFor(t, c, "ready")

	upper := filepath.Join(r.cfg.Dir, s.ID, "upper")
	for _, f := range []string{"newfile", "tmp/x"} {
		if b, err := os.ReadFile(filepath.Join(upper, f)); err != nil || string(b) != "written by app\n" {
			t.Errorf("upper/%s: %q %v", f, b, err)
		}
		if _, err := os.Stat(filepath.Join(lower, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lower/%s exists: %v", f, err)
		}
	}
	// The deleted /etc/passwd is a whiteout in the upper; the lower has it.
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "etc/passwd"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("upper/etc/passwd is not a whiteout: %+v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(lower, "etc/passwd")); err != nil {
		t.Errorf("lower /etc/passwd: %v", err)
	}

	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	if _, err := os.Stat(filepath.Join(r.cfg.Dir, s.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container dir still there: %v", err)
	}

	// A new container from the same layers, even with the same id, starts
	// from the image again.
	s2 := baseSpec(t, "cat", "/newfile")
	s2.ID = s.ID
	if e, out, _ := run(t, r, s2); e.Code != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("/newfile in a new container: %+v %q", e, out)
	}
	s3 := baseSpec(t, "cat", "/etc/passwd")
	if e, out, _ := run(t, r, s3); e.Code != 0 || !strings.Contains(out, "app:x:10000") {
		t.Errorf("/etc/passwd in a new container: %+v %q", e, out)
	}
}

func TestUnprivilegedCannotWriteImageFiles(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	e, out, _ := run(t, r, baseSpec(t, "write", "/etc/evil"))
	if e.Code != 1 || !strings.Contains(out, "permission denied") {
		t.Errorf("uid 10000 writing /etc: %+v %q", e, out)
	}
}

func TestManyLayers(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	// 120 layers with long paths: the lowerdir= option alone would be
	// about 12 KB, three times what mount(2) accepts.
	base := filepath.Join(t.TempDir(), strings.Repeat("long-layer-cache-directory-name-", 2))
	lowers := []string{testImage(t)}
	for i := 1; i <= 120; i++ {
		d := filepath.Join(base, fmt.Sprintf("sha256-%064d", i))
		if err := os.MkdirAll(filepath.Join(d, "layers"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "layers", strconv.Itoa(i)), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(d, "which"), []byte(strconv.Itoa(i)), 0o644)
		lowers = append(lowers, d)
	}
	s := baseSpec(t, "cat", "/which")
	s.Lowers = lowers
	if e, out, errOut := run(t, r, s); e.Code != 0 || out != "120" {
		t.Errorf("top layer's /which: %+v %q %q", e, out, errOut)
	}
	s = baseSpec(t, "cat", "/layers/1")
	s.Lowers = lowers
	if e, out, _ := run(t, r, s); e.Code != 0 || out != "x" {
		t.Errorf("bottom layer's file: %+v %q", e, out)
	}
}

func TestMemoryLimitOOMKill(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	s := baseSpec(t, "alloc", "200")
	s.MemoryLimit = 64 << 20
	e, out, errOut := run(t, r, s)
	if e.Code != 137 || e.Signal != syscall.SIGKILL || !e.OOMKilled || e.Err != nil {
		t.Errorf("exit = %+v (stdout %q stderr %q), want OOM kill", e, out, errOut)
	}
}

func TestPidsLimit(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	s := baseSpec(t, "forkbomb")
	s.PidsLimit = 32
	e, out, errOut := run(t, r, s)
	m := regexp.MustCompile(`forked (\d+), then: resource temporarily unavailable`).FindStringSubmatch(out)
	if e.Code != 0 || m == nil {
		t.Fatalf("exit %+v, stdout %q, stderr %q", e, out, errOut)
	}
	t.Logf("container said %q", strings.TrimSpace(out))
	if n, _ := strconv.Atoi(m[1]); n >= 32 || n < 10 {
		t.Errorf("forked %d children under a limit of 32", n)
	}
}

func TestSignalTerm(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	var out syncBuffer
	s := baseSpec(t, "sleep")
	s.Stdout = &out
	c := start(t, r, s)
	if c.Pid() <= 0 {
		t.Errorf("Pid() = %d", c.Pid())
	}
	out.waitFor(t, c, "ready")
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e := c.Wait()
	if e.Code != 143 || e.OOMKilled || e.Err != nil || !strings.Contains(out.String(), "got SIGTERM") {
		t.Errorf("exit %+v, output %q", e, out.String())
	}
}

func TestIgnoredTermThenKill(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	var out syncBuffer
	s := baseSpec(t, "ignoreterm")
	s.Stdout = &out
	c := start(t, r, s)
	out.waitFor(t, c, "ready")
	if err := c.SignalAll(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
		t.Fatalf("exited after an ignored SIGTERM: %+v", c.Wait())
	case <-time.After(300 * time.Millisecond):
	}
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := c.Wait(); e.Code != 137 || e.Signal != syscall.SIGKILL || e.OOMKilled || e.Err != nil {
		t.Errorf("exit %+v", e)
	}
}

func TestSeccomp(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	for _, uid := range []uint32{10000, 0} {
		s := baseSpec(t, "seccomp")
		s.UID, s.GID = uid, uid
		e, out, errOut := run(t, r, s)
		if e.Code != 0 {
			t.Fatalf("exit %+v %q %q", e, out, errOut)
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		want := map[string]string{
			"unshare_user":         "operation not permitted",
			"clone_newuser":        "operation not permitted",
			"mount":                "operation not permitted",
			"ptrace":               "operation not permitted",
			"personality_norandom": "operation not permitted",
			"personality_query":    "ok",
			"io_uring_setup":       "function not implemented",
			"nr1000":               "function not implemented",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("uid %d: %s: %q, want %q", uid, k, got[k], v)
			}
		}
	}
}

func TestJoinNetns(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	name := "skiff-rt-test-" + randomSuffix()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del: %v %s", err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v %s", err, out)
	}
	s := baseSpec(t, "info")
	s.NetnsPath = "/run/netns/" + name
	i := runInfo(t, r, s)
	if strings.Join(i.Ifaces, " ") != "lo:down probe1:down probe0:down" {
		t.Errorf("interfaces %q, want the netns's lo, probe0 and probe1", i.Ifaces)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	var out syncBuffer
	s := baseSpec(t, "hold", "20")
	s.Stdout = &out
	c := start(t, r, s)
	out.waitFor(t, c, "ready")
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryUsage < 20<<20 || st.MemoryRSS < 20<<20 || st.MemoryLimit != 256<<20 || st.Pids < 1 || st.CPU <= 0 {
		t.Errorf("stats %+v", st)
	}
	// The cgroup is where Stats looked: the container's process is in it.
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.Pid()))
	if !strings.Contains(string(b), "memory:/") || !strings.Contains(string(b), r.cfg.CgroupParent+"/"+s.ID) {
		t.Errorf("container cgroups:\n%s", b)
	}
	c.Signal(syscall.SIGKILL)
	c.Wait()
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	var stderr syncBuffer
	s := baseSpec(t)
	s.Args = []string{"/does-not-exist"}
	s.Stderr = &stderr
	_, err := r.Start(context.Background(), s)
	t.Logf("Start error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "/does-not-exist") || !strings.Contains(err.Error(), "runc") {
		t.Errorf("Start of a missing executable: %v", err)
	}
	if stderr.String() != "" {
		t.Errorf("runc's error reached the app's stderr: %q", stderr.String())
	}

	bad := []Spec{
		{ID: "../x", Lowers: s.Lowers, Args: s.Args},
		{ID: "ok", Lowers: nil, Args: s.Args},
		{ID: "ok", Lowers: []string{"relative"}, Args: s.Args},
		{ID: "ok", Lowers: s.Lowers},
		{ID: strings.Repeat("x", 65), Lowers: s.Lowers, Args: s.Args},
	}
	for _, b := range bad {
		if _, err := r.Start(context.Background(), b); err == nil {
			t.Errorf("Start(%+v) succeeded", b)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Start(ctx, baseSpec(t, "sleep")); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled context: %v", err)
	}

	// Two containers with one id.
	live := baseSpec(t, "sleep")
	var out syncBuffer
	live.Stdout = &out
	c := start(t, r, live)
	if _, err := r.Start(context.Background(), live); !errors.Is(err, ErrExists) {
		t.Errorf("second Start with id %s: %v", live.ID, err)
	}
	out.waitFor(t, c, "ready")

	cfg := testConfig(t)
	cfg.Runc = "/nonexistent/runc"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "/nonexistent/runc") {
		t.Errorf("New with a missing runc: %v", err)
	}
	cfg.Runc, cfg.CgroupParent = "", "/absolute"
	if _, err := New(cfg); err == nil {
		t.Error("New accepted an absolute CgroupParent")
	}
}

// TestReapAfterCrash kills the supervising process and runc, leaving a
// running container, its mount, cgroups and runc state behind; Reap in a
// new Runtime with the same configuration removes all of it.
func TestReapAfterCrash(t *testing.T) {
	t.Parallel()
	lower := testImage(t)
	cfg := testConfig(t)
	arg, _ := json.Marshal(crashArgs{Config: cfg, Lower: lower, ID: testID("crash")})
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), crashHelperEnv+"="+string(arg))
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var runcPid, containerPid int
	if _, serr := fmt.Sscanf(line, "pids %d %d", &runcPid, &containerPid); err != nil || serr != nil {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper said %q: %v %v", line, err, serr)
	}
	helper.Process.Kill()
	helper.Wait()
	if err := syscall.Kill(runcPid, syscall.SIGKILL); err != nil {
		t.Errorf("kill runc: %v", err)
	}

	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	left := leftovers(r, false)
	t.Logf("after the crash:\n  %s", strings.Join(left, "\n  "))
	if len(left) < 3 {
		t.Errorf("the crash left too little to test Reap: %q", left)
	}
	if !alive(containerPid) {
		t.Errorf("container process %d is not running after the crash", containerPid)
	}
	if err := r.Reap(); err != nil {
		t.Errorf("Reap: %v", err)
	}
	if left := leftovers(r, true); len(left) > 0 {
		t.Errorf("left behind after Reap:\n  %s", strings.Join(left, "\n  "))
	}
	if alive(containerPid) {
		t.Errorf("container process %d survived Reap", containerPid)
	}
	// Reap is idempotent.
	if err := r.Reap(); err != nil {
		t.Errorf("second Reap: %v", err)
	}
}

// alive reports whether pid runs (zombies do not count).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

type crashArgs struct {
	Config Config
	Lower  string
	ID     string
}

// crashHelper runs in a child test process: it starts a container, reports
// the runc and container pids, and waits to be killed.
func crashHelper() {
	var a crashArgs
	if err := json.Unmarshal([]byte(os.Getenv(crashHelperEnv)), &a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r, err := New(a.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var out syncBuffer
	c, err := r.Start(context.Background(), Spec{
		ID: a.ID, Lowers: []string{a.Lower}, Args: []string{"/app", "sleep"},
		UID: 10000, GID: 10000, MemoryLimit: 64 << 20, PidsLimit: 20, Stdout: &out,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for !strings.Contains(out.String(), "ready") {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Printf("pids %d %d\n", c.cmd.Process.Pid, c.Pid())
	time.Sleep(time.Hour)
}

// TestRuncKilled: if runc dies under a running supervisor (say the OOM
// killer picked it), Wait reports it and the container is still removed.
func TestRuncKilled(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	var out syncBuffer
	s := baseSpec(t, "sleep")
	s.Stdout = &out
	c, err := r.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, c, "ready")
	pid := c.Pid()
	began := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e := c.Wait()
	if e.Err == nil || !strings.Contains(e.Err.Error(), "runc was killed") || e.Code != -1 {
		t.Errorf("exit %+v, want an error about runc", e)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("Wait took %v", d)
	}
	if alive(pid) {
		t.Errorf("container process %d survived", pid)
	}
}

// TestStartCancelled cancels Start at various points of the start-up:
// whatever happens, nothing is left behind.
func TestStartCancelled(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	cancelled := 0
	for i := 0; i < 12; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i)*8*time.Millisecond)
		c, err := r.Start(ctx, baseSpec(t, "sleep"))
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Start after %d ms: %v", i*8, err)
			}
			cancelled++
			continue
		}
		c.Signal(syscall.SIGKILL)
		if e := c.Wait(); e.Err != nil {
			t.Errorf("exit %+v", e)
		}
	}
	t.Logf("%d of 12 starts cancelled", cancelled)
}

// TestLegacyOverlayMount covers the mount(2) fallback for kernels without
// lowerdir+ (older than 6.8).
func TestLegacyOverlayMount(t *testing.T) {
	t.Parallel()
	testImage(t)
	dir := t.TempDir()
	var lowers []string
	for _, name := range []string{"top", "bottom"} {
		l := filepath.Join(dir, name)
		os.Mkdir(l, 0o755)
		os.WriteFile(filepath.Join(l, "which"), []byte(name), 0o644)
		lowers = append(lowers, l)
	}
	upper, work, target := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{upper, work, target} {
		os.Mkdir(d, 0o755)
	}
	if err := mountOverlayLegacy(target, lowers, upper, work); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(target, "which"))
	if err := unmountAll(target); err != nil {
		t.Fatal(err)
	}
	if err != nil || string(b) != "top" {
		t.Errorf("which = %q %v", b, err)
	}
	long := make([]string, 300)
	for i := range long {
		long[i] = lowers[0]
	}
	if err := mountOverlayLegacy(target, long, upper, work); err == nil || !strings.Contains(err.Error(), "over the kernel's") {
		unmountAll(target)
		t.Errorf("overlong options: %v", err)
	}
	if mps, _ := mountsUnder(dir); len(mps) > 0 {
		t.Errorf("still mounted: %v", mps)
	}
}

// TestDynamicGlibcProgram runs the host's bash (dynamically linked glibc,
// forks for pipes and subshells) to check that the seccomp allowlist does
// not break an ordinary libc program.
func TestDynamicGlibcProgram(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ldd", bash).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bash, err)
	}
	layer := t.TempDir()
	files := append(regexp.MustCompile(`/\S+`).FindAllString(string(out), -1), bash)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(layer, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := baseSpec(t)
	s.Lowers = []string{testImage(t), layer}
	s.Args = []string{bash, "-c", `echo $(( 6 * 7 )) | { read x; echo $x; }; (exit 3); echo $?; echo x > /tmp/f && echo $(< /tmp/f)`}
	if e, out, errOut := run(t, r, s); e.Code != 0 || out != "42\n3\nx\n" {
		t.Errorf("exit %+v, stdout %q, stderr %q", e, out, errOut)
	}
}

// TestInitForwardsSignals runs an app that handles no signal, with a child
// of its own. As PID 1 a signal's default action does not apply to it (a Go
// program then exits 2, other programs ignore SIGTERM); under the init, the
// SIGTERM sent to the container reaches every process and the app dies of
// it: status 143, as on Heroku.
func TestInitForwardsSignals(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	init := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command("go", "build", "-o", init, "./testdata/init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/init: %v\n%s", err, out)
	}
	var out syncBuffer
	s := baseSpec(t, "plain", "child")
	s.Init = init
	s.Stdout = &out
	c := start(t, r, s)
	out.waitFor(t, c, "ready")
	if err := c.Signal(syscall.SIGTERM); err != nil { // to PID 1 only: the init
		t.Fatal(err)
	}
	if e := c.Wait(); e.Code != 143 || e.Err != nil {
		t.Errorf("exit %+v, want status 143", e)
	}
}

// TestTerminal runs a process on a pseudo-terminal, as `heroku run` does:
// it sees a terminal of the size asked for, its input is echoed by the
// terminal, stdout and stderr are one stream, and Ctrl-D (0x04) ends its
// input without closing anything.
func TestTerminal(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	var out, runcErr syncBuffer
	pr, pw := io.Pipe()
	defer pw.Close()
	s := baseSpec(t, "tty")
	s.Terminal = &Winsize{Cols: 132, Rows: 43}
	s.Stdin, s.Stdout, s.Stderr = pr, &out, &runcErr
	c := start(t, r, s)
	out.waitFor(t, c, "terminal 132x43\n")
	if _, err := io.WriteString(pw, "hello tty\n"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, c, "HELLO TTY\n")
	if _, err := io.WriteString(pw, "\x04"); err != nil {
		t.Fatal(err)
	}
	if e := c.Wait(); e.Code != 3 || e.Err != nil {
		t.Errorf("exit %+v, want status 3", e)
	}
	// The terminal echoes the input line before the process answers it.
	want := "terminal 132x43\nhello tty\nHELLO TTY\neof\n"
	if got := strings.ReplaceAll(out.String(), "\r\n", "\n"); got != want {
		t.Errorf("terminal output %q, want %q", got, want)
	}
	if runcErr.String() != "" {
		t.Errorf("stderr %q, want nothing", runcErr.String())
	}
}

// TestTerminalOutputComplete: output on a terminal is all delivered, up to
// its last line, even when the process exits right after writing it.
func TestTerminalOutputComplete(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	const n = 5000
	s := baseSpec(t, "flood", strconv.Itoa(n))
	s.Terminal = &Winsize{Cols: 80, Rows: 24}
	e, out, _ := run(t, r, s)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if e.Code != 0 || len(lines) != n || !strings.HasPrefix(lines[n-1], fmt.Sprintf("line %06d ", n)) {
		t.Errorf("exit %+v; %d lines, last %q; want %d", e, len(lines), lines[len(lines)-1], n)
	}
}
