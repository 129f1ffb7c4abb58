package runtime

import (
	goruntime "runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// seccompProfile is an allowlist: every system call not named here fails
// with EPERM. It follows Docker's default profile for a container with no
// capabilities, minus what Heroku apps never need and what widens the
// kernel attack surface (ptrace and process_vm_*, kcmp, pidfd_getfd,
// name_to_handle_at, userfaultfd, perf_event_open, bpf, keyctl and friends,
// mount and the new mount API, unshare, setns, namespace flags on clone,
// chroot, module and kexec calls, clock and time setting, swap, reboot,
// syslog, acct, quotactl, iopl/ioperm, fanotify, io_uring).
//
// Native architecture only: 32-bit syscall entry (int 0x80 on amd64) does
// not match the filter and is refused.
//
// runc adds a stub that makes system calls newer than any named here return
// ENOSYS instead of EPERM, so libcs fall back as on an older kernel. clone3
// and io_uring get ENOSYS explicitly for the same reason: glibc then uses
// clone, and runtimes (libuv, ...) fall back to epoll and thread pools.
func seccompProfile() *specs.LinuxSeccomp {
	enosys := uint(unix.ENOSYS)
	allowed := append([]string{}, allowedSyscalls...)
	var arch []specs.Arch
	switch goruntime.GOARCH {
	case "amd64":
		arch = []specs.Arch{specs.ArchX86_64}
		allowed = append(allowed, "arch_prctl", "get_thread_area", "set_thread_area")
	case "arm64":
		arch = []specs.Arch{specs.ArchAARCH64}
	}
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, // EPERM
		Architectures: arch,
		Syscalls: []specs.LinuxSyscall{
			{Names: allowed, Action: specs.ActAllow},
			// fork/vfork/threads, but no new namespaces: without this,
			// clone(CLONE_NEWUSER) would give an unprivileged process a
			// user namespace in which it holds every capability.
			{
				Names:  []string{"clone"},
				Action: specs.ActAllow,
				// MASKED_EQ: (flags & Value) == ValueTwo; Value is the mask.
				Args: []specs.LinuxSeccompArg{{
					Index: 0, Op: specs.OpMaskedEqual, ValueTwo: 0,
					Value: unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
						unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP,
				}},
			},
			// Only the harmless personalities (Docker's list): no
			// ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...
			personality(0x0), personality(0x8), personality(0x20000), personality(0x20008), personality(0xffffffff),
			{Names: []string{"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
}

func personality(v uint64) specs.LinuxSyscall {
	return specs.LinuxSyscall{
		Names:  []string{"personality"},
		Action: specs.ActAllow,
		Args:   []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: v}},
	}
}

// allowedSyscalls are allowed with any arguments. Names unknown on the
// architecture (or to runc's libseccomp) are ignored by runc.
var allowedSyscalls = []string{
	"accept", "accept4", "access", "alarm", "bind", "brk",
	"cachestat", "capget", "capset", "chdir", "chmod", "chown",
	"clock_getres", "clock_gettime", "clock_nanosleep", "close", "close_range",
	"connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
	"eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
	"faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2",
	"fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
	"fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate",
	"futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "futimesat",
	"get_mempolicy", "get_robust_list", "getcpu", "getcwd", "getdents", "getdents64",
	"getegid", "geteuid", "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp",
	"getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit",
	"getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid",
	"getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
	"io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit",
	"ioctl", "ioprio_get", "ioprio_set", "kill",
	"landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
	"lchown", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
	"lremovexattr", "lseek", "lsetxattr", "lstat",
	"madvise", "map_shadow_stack", "mbind", "membarrier", "memfd_create", "memfd_secret", "mincore",
	"mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mprotect",
	"mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
	"mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
	"nanosleep", "newfstatat", "open", "openat", "openat2", "pause",
	"pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect",
	"poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease",
	"pselect6", "pwrite64", "pwritev", "pwritev2",
	"read", "readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg",
	"remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
	"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
	"rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
	"sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
	"sched_getparam", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
	"sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
	"semctl", "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
	"set_mempolicy", "set_robust_list", "set_tid_address", "setfsgid", "setfsuid", "setgid", "setgroups",
	"setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid", "setreuid",
	"setrlimit", "setsid", "setsockopt", "setuid", "setxattr",
	"shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
	"socket", "socketpair", "splice", "stat", "statfs", "statx", "symlink", "symlinkat",
	"sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
	"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime",
	"timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill",
	"truncate", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimes",
	"vfork", "vmsplice", "wait4", "waitid", "write", "writev",
}
