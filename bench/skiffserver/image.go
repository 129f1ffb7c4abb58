package skiffserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// tb is the minimal testing.TB that imagetest needs outside a test:
// Fatalf panics with a tbFatal (recovered by BuildImage) and TempDir makes
// directories under dir. The embedded nil TB only supplies the unexported
// method; no other method is called.
type tb struct {
	testing.TB
	dir string
	n   int
}

type tbFatal struct{ msg string }

func (t *tb) Helper()                           {}
func (t *tb) Fatalf(format string, args ...any) { panic(tbFatal{fmt.Sprintf(format, args...)}) }
func (t *tb) Fatal(args ...any)                 { panic(tbFatal{fmt.Sprint(args...)}) }
func (t *tb) TempDir() string {
	t.n++
	d := filepath.Join(t.dir, "tb"+strconv.Itoa(t.n))
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatalf("%v", err)
	}
	return d
}

// BuildImage compiles a Go program (one main.go) into a static binary and
// writes an image running it as an OCI layout under tmp. imagetest
// compiles under os.TempDir(), so TMPDIR points into tmp meanwhile:
// nothing is left outside it.
func BuildImage(tmp, mainGo string) (layout string, err error) {
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", tmp)
	defer func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
		if r := recover(); r != nil {
			f, ok := r.(tbFatal)
			if !ok {
				panic(r)
			}
			err = errors.New(f.msg)
		}
	}()
	return imagetest.BuildGo(&tb{dir: filepath.Join(tmp, "image")}, mainGo), nil
}
