// Package hostlock serialises processes that use the same fixed host
// resources: bridge names, subnets, netns prefixes. Tests of different
// checkouts of Skiff (or two `go test ./...` at once) would otherwise create
// and reap each other's interfaces.
//
// The lock is an exclusive flock(2) on a file in the system temp directory,
// so the kernel releases it when the holder dies, however it dies.
package hostlock

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock is a held host-wide lock.
type Lock struct{ f *os.File }

// Acquire blocks until it holds the lock called name, which must be a plain
// file name component such as "dyno-test".
func Acquire(name string) (*Lock, error) {
	if name == "" || filepath.Base(name) != name {
		return nil, fmt.Errorf("hostlock: bad name %q", name)
	}
	path := filepath.Join(os.TempDir(), "skiff-"+name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("hostlock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("hostlock: flock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. It is safe on a nil Lock.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
