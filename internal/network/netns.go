//go:build linux

package network

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// onDiscardedThread runs fn on an OS thread of its own that the Go runtime
// throws away afterwards. fn may unshare or setns the thread's network
// namespace: because the goroutine exits while still locked to the thread,
// the runtime terminates that thread instead of returning it to the pool, so
// no other goroutine can ever run in a namespace it did not ask for. This is
// cheaper and safer than switching back (a failed switch-back would poison a
// pooled thread).
func onDiscardedThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Deliberately no UnlockOSThread.
		done <- fn()
	}()
	return <-done
}

// inNetns runs fn on a discarded thread that has joined the network
// namespace at path. Sockets fn opens (netlink handles, listeners, dialed
// connections) stay in that namespace after fn returns.
func inNetns(path string, fn func() error) error {
	return onDiscardedThread(func() error {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", path, err)
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns %s: %w", path, err)
		}
		return fn()
	})
}

// createNetns makes a new, persistent network namespace bind-mounted at path
// (as `ip netns add` does) and runs fn inside it on a discarded thread. The
// file is created with O_EXCL, so an existing namespace is never reused.
// On error nothing is left behind.
func createNetns(path string, fn func() error) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file: %w", err)
	}
	f.Close()
	err = onDiscardedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare netns: %w", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount netns to %s: %w", path, err)
		}
		return fn()
	})
	if err != nil {
		_ = removeNetns(path)
		return err
	}
	return nil
}

// removeNetns unmounts and removes a namespace file; a missing or unmounted
// file is not an error. The kernel frees the namespace once nothing else
// (a process, an open fd) refers to it.
func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

var netnsDirMu sync.Mutex

// prepareNetnsDir creates dir and makes it a shared mount point, exactly as
// iproute2 does for /run/netns. Shared propagation means that when a
// namespace's bind mount is removed here, copies of it that other mount
// namespaces took in the meantime (a container being set up, an `unshare -m`
// shell) are unmounted too, so the kernel can really free the namespace.
func prepareNetnsDir(dir string) error {
	netnsDirMu.Lock()
	defer netnsDirMu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("network: netns dir: %w", err)
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) { // EINVAL: not a mount point yet
		return fmt.Errorf("network: make %s shared: %w", dir, err)
	}
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("network: bind-mount %s: %w", dir, err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("network: make %s shared: %w", dir, err)
	}
	return nil
}
