package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hierarchy is one mounted cgroup hierarchy (a v1 controller set, or the v2
// unified tree) and this process's cgroup in it.
type hierarchy struct {
	mount       string   // e.g. /sys/fs/cgroup/memory
	controllers []string // e.g. ["memory"], ["name=systemd"]; empty for v2
	own         string   // this process's cgroup, relative to mount
}

// dir returns the directory of the cgroup rel (relative to our own cgroup).
func (h *hierarchy) dir(rel string) string {
	return filepath.Join(h.mount, h.own, rel)
}

// readHierarchies matches /proc/self/cgroup against /proc/self/mountinfo.
// runc resolves a relative cgroupsPath the same way: under the cgroup of
// the process that runs it (ours, inherited), in every hierarchy.
func readHierarchies() ([]hierarchy, error) {
	own := map[string]string{} // controllers ("memory", "name=systemd", "" for v2) -> path
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			own[parts[1]] = parts[2]
		}
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hs []hierarchy
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 >= len(fields) {
			continue
		}
		fstype, root, mp := fields[sep+1], unescapeMountinfo(fields[3]), unescapeMountinfo(fields[4])
		var key string
		var ctrls []string
		switch fstype {
		case "cgroup2":
			key = ""
		case "cgroup":
			for _, o := range strings.Split(fields[sep+3], ",") {
				switch o {
				case "rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children", "xattr", "noprefix", "cpuset_v2_mode", "favordynmods", "nsdelegate", "memory_recursiveprot":
					continue
				}
				if strings.HasPrefix(o, "release_agent=") {
					continue
				}
				ctrls = append(ctrls, o)
			}
			key = strings.Join(ctrls, ",")
		default:
			continue
		}
		path, ok := own[key]
		if !ok {
			// /proc/self/cgroup may list combined controllers in another
			// order (cpu,cpuacct vs cpuacct,cpu).
			for k, v := range own {
				if k != "" && sameSet(k, key) {
					path, ok = v, true
					break
				}
			}
		}
		if !ok || seen[key] {
			continue
		}
		// A mount of a sub-tree (root != "/") shows paths relative to it.
		rel, err := filepath.Rel(root, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		seen[key] = true
		hs = append(hs, hierarchy{mount: mp, controllers: ctrls, own: rel})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted")
	}
	return hs, nil
}

func sameSet(a, b string) bool {
	as, bs := strings.Split(a, ","), strings.Split(b, ",")
	if len(as) != len(bs) {
		return false
	}
	m := map[string]bool{}
	for _, x := range as {
		m[x] = true
	}
	for _, x := range bs {
		if !m[x] {
			return false
		}
	}
	return true
}

// hierarchy returns the v1 hierarchy that has controller, or nil.
func (r *Runtime) hierarchy(controller string) *hierarchy {
	for i := range r.cg {
		for _, c := range r.cg[i].controllers {
			if c == controller {
				return &r.cg[i]
			}
		}
	}
	return nil
}

// cgroupDir is the directory of container id's cgroup for controller.
func (r *Runtime) cgroupDir(controller, id string) (string, error) {
	h := r.hierarchy(controller)
	if h == nil {
		return "", fmt.Errorf("runtime: no %s cgroup hierarchy (cgroup v1 is required)", controller)
	}
	return h.dir(filepath.Join(r.cfg.CgroupParent, id)), nil
}

// Stats are a container's resource usage, read from its v1 cgroups.
type Stats struct {
	// MemoryUsage is memory.usage_in_bytes: what the limit is enforced on
	// (resident memory, page cache and kernel memory of the container).
	MemoryUsage uint64
	// MemoryLimit is the enforced limit (memory.limit_in_bytes).
	MemoryLimit uint64
	// MemoryRSS, MemoryCache and MemorySwap break usage down (memory.stat
	// total_rss, total_cache, total_swap); Heroku's memory_total is their
	// sum.
	MemoryRSS, MemoryCache, MemorySwap uint64
	// MemoryPgpgin and MemoryPgpgout count pages read and written
	// (Heroku's memory_pgpgin, memory_pgpgout).
	MemoryPgpgin, MemoryPgpgout uint64
	// Pids is the number of processes and threads (pids.current).
	Pids uint64
	// CPU is the CPU time consumed so far (cpuacct.usage).
	CPU time.Duration
}

// Stats reads the container's current resource usage.
func (c *Container) Stats() (Stats, error) {
	select {
	case <-c.done:
		return Stats{}, ErrNotRunning
	default:
	}
	var st Stats
	mem, err := c.r.cgroupDir("memory", c.id)
	if err != nil {
		return st, err
	}
	if st.MemoryUsage, err = readUint(filepath.Join(mem, "memory.usage_in_bytes")); err != nil {
		return st, c.statsErr(err)
	}
	if st.MemoryLimit, err = readUint(filepath.Join(mem, "memory.limit_in_bytes")); err != nil {
		return st, c.statsErr(err)
	}
	kv, err := readKeyValues(filepath.Join(mem, "memory.stat"))
	if err != nil {
		return st, c.statsErr(err)
	}
	st.MemoryRSS, st.MemoryCache, st.MemorySwap = kv["total_rss"], kv["total_cache"], kv["total_swap"]
	st.MemoryPgpgin, st.MemoryPgpgout = kv["total_pgpgin"], kv["total_pgpgout"]
	if dir, err := c.r.cgroupDir("pids", c.id); err == nil {
		if st.Pids, err = readUint(filepath.Join(dir, "pids.current")); err != nil {
			return st, c.statsErr(err)
		}
	}
	if dir, err := c.r.cgroupDir("cpuacct", c.id); err == nil {
		ns, err := readUint(filepath.Join(dir, "cpuacct.usage"))
		if err != nil {
			return st, c.statsErr(err)
		}
		st.CPU = time.Duration(ns)
	}
	return st, nil
}

func (c *Container) statsErr(err error) error {
	select {
	case <-c.done:
		return ErrNotRunning
	default:
		return fmt.Errorf("runtime: stats %s: %w", c.id, err)
	}
}

// oomKills reads the oom_kill counter of the container's memory cgroup.
func (c *Container) oomKills() (uint64, error) {
	dir, err := c.r.cgroupDir("memory", c.id)
	if err != nil {
		return 0, err
	}
	kv, err := readKeyValues(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return 0, err
	}
	n, ok := kv["oom_kill"]
	if !ok {
		return 0, errors.New("runtime: memory.oom_control has no oom_kill counter")
	}
	return n, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return ^uint64(0), nil
	}
	return strconv.ParseUint(s, 10, 64)
}

func readKeyValues(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kv := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			kv[f[0]] = n
		}
	}
	return kv, nil
}

// removeCgroups kills whatever still runs in container id's cgroups and
// removes them, in every hierarchy. Missing cgroups are fine.
func (r *Runtime) removeCgroups(id string) error {
	var errs []error
	for i := range r.cg {
		if err := removeCgroupTree(r.cg[i].dir(filepath.Join(r.cfg.CgroupParent, id))); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroupTree removes cgroup dir and its children, depth first, after
// killing their processes.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// A frozen cgroup's processes cannot act on SIGKILL.
	if b, err := os.ReadFile(filepath.Join(dir, "freezer.state")); err == nil && strings.TrimSpace(string(b)) != "THAWED" {
		_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := cgroupProcs(dir)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("runtime: removing cgroup %s: %w (pids %v)", dir, err, pids))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.Join(errs...)
}

func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}
