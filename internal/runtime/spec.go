package runtime

import (
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ociVersion is the runtime-spec version written to config.json: the one
// runc 1.1 implements (the Go types are a superset).
const ociVersion = "1.0.2"

// ociSpec builds the bundle's config.json. doc.go explains each choice.
func (r *Runtime) ociSpec(s *Spec) *specs.Spec {
	cwd := s.Cwd
	if cwd == "" {
		cwd = "/"
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = s.ID
	}
	netns := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.NetnsPath}

	res := &specs.LinuxResources{
		// Deny every device; runc adds the standard ones (null, zero,
		// full, random, urandom, tty, ptmx, pts).
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	if s.MemoryLimit > 0 {
		limit := s.MemoryLimit
		res.Memory = &specs.LinuxMemory{Limit: &limit}
		if r.memsw {
			swap := s.MemoryLimit // memory+swap = memory: no swap on top
			res.Memory.Swap = &swap
		}
	}
	if s.PidsLimit > 0 {
		limit := s.PidsLimit
		res.Pids = &specs.LinuxPids{Limit: &limit}
	}
	if s.CPUShares > 0 {
		shares := s.CPUShares
		res.CPU = &specs.LinuxCPU{Shares: &shares}
	}

	spec := &specs.Spec{
		Version: ociVersion,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: s.UID, GID: s.GID},
			Args:     s.Args,
			Env:      s.Env,
			Cwd:      cwd,
			// Non-nil and empty: runc drops every capability from every
			// set, bounding included. (A nil set would keep runc's.)
			Capabilities: &specs.LinuxCapabilities{
				Bounding: []string{}, Effective: []string{}, Inheritable: []string{},
				Permitted: []string{}, Ambient: []string{},
			},
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: r.nofile, Soft: r.nofile},
			},
			NoNewPrivileges: true,
		},
		Hostname: hostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources:   res,
			CgroupsPath: path.Join(r.cfg.CgroupParent, s.ID),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				netns,
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
				"/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
			Seccomp: seccompProfile(),
		},
	}
	if s.Terminal != nil {
		spec.Process.Terminal = true
		spec.Process.ConsoleSize = &specs.Box{Height: uint(s.Terminal.Rows), Width: uint(s.Terminal.Cols)}
	}
	if s.Init != "" {
		// The init is bind-mounted read-only and runs the command as its
		// child: see Spec.Init.
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: s.Init,
			Options: []string{"bind", "ro", "nosuid", "nodev"}})
		spec.Process.Args = append([]string{InitPath, InitArg, "--"}, s.Args...)
	}
	return spec
}
