// Package runtime runs one container from a Spec with runc, supervised, and
// removes every trace of it when it exits. It knows nothing of apps,
// releases or networks: the caller passes image layer directories and,
// optionally, a network namespace to join.
//
//	rt, err := runtime.New(runtime.Config{Root: "/run/skiff/runc", Dir: "/var/lib/skiff/containers"})
//	err = rt.Reap()                           // once, at start-up: clear a crashed run's leftovers
//	c, err := rt.Start(ctx, runtime.Spec{ID: "web-1-ab12", Lowers: layers, Args: cmd, ...})
//	st, err := c.Stats()                      // memory, pids, CPU from the cgroups (R14, runtime metrics)
//	err = c.SignalAll(syscall.SIGTERM)         // shutdown; c.Signal(syscall.SIGKILL) after the grace period
//	exit := c.Wait()                          // Code 143, 137 + OOMKilled (R15), ...
//
// # Process model
//
// Each container is `runc run --keep` in the foreground, a child process of
// ours in its own process group (see ../../shared/reference/linux-runtime-notes.md
// for why runc and not crun, docker or bare namespaces). Foreground runc
// gives us the exit status directly (128+n after signal n, 137 after an OOM
// kill) and carries the container's stdout and stderr over pipes, so no
// subreaper is needed (PR_SET_CHILD_SUBREAPER would be process-wide and
// would hand us every orphan of skiff's other children). Start returns when
// runc has written the container's pid file, which it does once the
// container's process has been released to exec the command. --keep leaves the stopped container in place so that the memory
// cgroup's oom_kill counter can be read before `runc delete` removes it:
// that counter, not memory.failcnt (which stays 0 on these kernels), is how
// an OOM kill is told apart from any other SIGKILL.
//
// runc's own messages go to a JSON log (--log-format json) in the bundle, so
// they are reported as errors instead of app output. runc also prints a
// fatal error on the stderr it shares with the container; stderr is held
// back until the container is known to run, and dropped (used as the error
// message) when it never did.
//
// Nothing relies on Pdeathsig (it fires when the forking OS thread exits,
// not the process). If skiff dies, runc and the container keep running and
// Reap, at the next start, kills and deletes them, their cgroups, mounts and
// directories. Reap only touches Root, Dir and CgroupParent, which belong to
// one Runtime alone.
//
// # Root filesystem
//
// The image layers are mounted read-only as the lower layers of an overlay
// whose upper directory is per container and removed with it: Heroku's
// ephemeral filesystem. The root is writable (as on Heroku) but an
// unprivileged uid can only write where the image lets it; the image itself
// is never modified, however many containers share it. The overlay is
// mounted with the new mount API, one fsconfig("lowerdir+") per layer,
// because the mount(2) option string is limited to one page (about 40 long
// layer-cache paths); kernels older than 6.8 fall back to mount(2). It is
// nosuid and nodev (no setuid files, no device nodes from an image) and
// volatile (no syncs for an upper that is thrown away). /tmp is made 1777 in
// the overlay rather than being a tmpfs: runc resets a tmpfs's mode to the
// image's mount-point mode, and on Heroku /tmp is part of the ephemeral disk.
// A container directory is only ever removed after checking that nothing is
// mounted under it.
//
// # Isolation
//
//   - Namespaces: pid (the app is pid 1 and sees only its processes), mount,
//     uts (hostname), ipc, and network: the caller's netns (veth on the Skiff
//     bridge) or, when none is given, a fresh one with only lo up. No user
//     namespace: the shared, root-owned layer cache would need idmapped
//     mounts; with no capabilities and no_new_privs, uid 0 inside only
//     owns the image's root-owned files (in its own upper). No cgroup
//     namespace: runc
//     1.1 on the hybrid v1 hierarchy does not need it, and /sys/fs/cgroup is
//     mounted read-only so language runtimes (JVM, Node, Go) can read their
//     memory limit.
//   - User: the uid/gid the caller resolved from the image (Heroku runs an
//     unprivileged user), no supplementary groups.
//   - Capabilities: none, in every set including the bounding set; dynos
//     bind $PORT (≥1024) and need none. noNewPrivileges is set, so setuid
//     binaries and file capabilities cannot give any back.
//   - seccomp: an allowlist (see seccomp.go) based on Docker's default for a
//     container without capabilities; everything else fails with EPERM
//     (ENOSYS for calls newer than the list, clone3 and io_uring, so that
//     libcs and runtimes fall back). In particular no user namespaces
//     (unshare or clone with CLONE_NEWUSER, which needs no capability and
//     would re-open the whole kernel attack surface), no ptrace, no bpf,
//     no perf_event_open, no keyrings, no mount.
//   - Masked and read-only /proc and /sys paths: runc's defaults (kcore,
//     keys, timer_list, sysrq-trigger, /proc/sys, ...). /sys is read-only.
//     Device cgroup: deny all, plus runc's standard devices (null, zero,
//     full, random, urandom, tty, ptmx).
//   - Limits: memory hard limit with memory+swap = memory (no swap on top),
//     pids.max counting processes and threads (fork bombs stop there), CPU
//     shares. RLIMIT_NOFILE is min(10000, our hard limit): without
//     CAP_SYS_RESOURCE runc cannot raise a hard limit, and asking for more
//     fails the start with EPERM.
//   - cgroupsPath is relative, CgroupParent/<id>: runc places it under the
//     calling process's own cgroup in every hierarchy. On these machines our
//     memory cgroup is nested (memory:/<parent>/<id>), and an absolute path
//     would escape it.
//
// # Caveats
//
// Without Spec.Init the app runs as pid 1 of its namespace, and the kernel
// delivers to pid 1 only the signals it installed a handler for (plus
// SIGKILL from outside): a program without a SIGTERM handler ignores
// SIGTERM (a Go program exits with status 2) instead of dying with status
// 143 as on Heroku. Spec.Init runs an init as pid 1 instead (package pid1:
// it forwards signals, reaps orphans and exits with the app's status);
// skiff server always gives one. There is no terminal (Process.Terminal is
// false): attached one-off dynos will need a console socket.
package runtime
