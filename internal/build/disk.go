package build

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"
)

// diskWatch stops a RUN step while it runs, rather than after, when it
// writes more into its layer than a layer may hold, or when the
// filesystem under the layer runs low: a step that fills the disk would
// otherwise take the data directory (the store, logs, other apps' images)
// down with it. The layer is measured by walking it (file sizes, as the
// layer's limit counts them), the filesystem by statfs.
type diskWatch struct {
	dir     string        // the step's writable layer
	limit   int64         // bytes the layer may hold
	reserve int64         // bytes that must stay free on dir's filesystem
	every   time.Duration // how often to look
}

// run looks every w.every until ctx ends; it returns why the step must
// stop, or "" when ctx ended first.
func (w diskWatch) run(ctx context.Context) string {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-t.C:
		}
		if why := w.check(); why != "" {
			return why
		}
	}
}

// check measures once.
func (w diskWatch) check() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(w.dir, &st); err == nil {
		if free := int64(st.Bavail) * st.Bsize; free < w.reserve {
			return fmt.Sprintf("stopped: the disk holding the build has %d MB free, less than the %d MB it must keep", free>>20, w.reserve>>20)
		}
	}
	var size int64
	over := fmt.Errorf("over")
	err := filepath.WalkDir(w.dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // gone meanwhile, or no content of its own
		}
		if info, err := d.Info(); err == nil {
			size += info.Size()
		}
		if size > w.limit {
			return over
		}
		return nil
	})
	if err == over {
		return fmt.Sprintf("stopped: the step wrote more than %d MB, the most a layer may hold", w.limit>>20)
	}
	return ""
}
