package imagetest

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
)

// BusyboxPath is where Debian's busybox-static package (installed by
// scripts/install-deps) puts its static binary.
const BusyboxPath = "/bin/busybox"

var busybox struct {
	once  sync.Once
	layer []byte
	err   error
}

// BusyboxLayer returns an uncompressed layer tar of a small Linux system
// with a shell: the host's static busybox at /bin/busybox with every
// applet it has linked at its usual path (/bin/sh, /bin/cat, /usr/bin/env,
// …), /etc/passwd and /etc/group with root and the non-root user "app"
// (uid and gid AppUID/AppGID, home /home/app), /tmp (mode 1777), and empty
// /proc, /dev, /sys and /home/app. Other layers can go on top of it (see
// Layout). It is built once per test process.
func BusyboxLayer(t testing.TB) []byte {
	t.Helper()
	busybox.once.Do(func() { busybox.layer, busybox.err = busyboxLayer(t) })
	if busybox.err != nil {
		t.Fatalf("imagetest: busybox image: %v (scripts/install-deps installs busybox-static)", busybox.err)
	}
	return busybox.layer
}

// Busybox returns the path of an OCI image layout holding a one-layer
// image of BusyboxLayer, with Cmd ["/bin/sh"], PATH set, and the options
// applied (WithUser("app") to run as the non-root user, WithCmd, …).
func Busybox(t testing.TB, opts ...Option) string {
	t.Helper()
	return Layout(t, [][]byte{BusyboxLayer(t)}, append([]Option{WithCmd("/bin/sh")}, opts...)...)
}

func busyboxLayer(t testing.TB) ([]byte, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(BusyboxPath, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", BusyboxPath, err)
	}
	dirs := map[string]bool{"bin/": true, "dev/": true, "etc/": true, "home/": true, "home/app/": true,
		"proc/": true, "sys/": true, "tmp/": true, "usr/": true}
	var links []string
	for _, p := range strings.Fields(string(out)) {
		if p == "bin/busybox" || strings.Contains(p, "..") || strings.HasPrefix(p, "/") {
			continue
		}
		links = append(links, p)
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d+"/"] = true
		}
	}
	var entries []Entry
	for _, d := range sortedKeys(dirs) {
		mode, uid := int64(0o755), 0
		switch d {
		case "tmp/":
			mode = 0o1777
		case "home/app/":
			uid = AppUID
		}
		entries = append(entries, Entry{Header: tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: mode, Uid: uid, Gid: uid}})
	}
	entries = append(entries,
		Entry{Header: tar.Header{Name: "bin/busybox", Mode: 0o755}, Body: bin},
		Entry{Header: tar.Header{Name: "etc/group", Mode: 0o644}, Body: []byte(fmt.Sprintf("root:x:0:\napp:x:%d:\n", AppGID))},
		Entry{Header: tar.Header{Name: "etc/passwd", Mode: 0o644},
			Body: []byte(fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\napp:x:%d:%d:app:/home/app:/bin/sh\n", AppUID, AppGID))},
	)
	sort.Strings(links)
	for _, l := range links {
		entries = append(entries, Entry{Header: tar.Header{Name: l, Typeflag: tar.TypeSymlink, Linkname: "/bin/busybox", Mode: 0o777}})
	}
	return Tar(t, entries...), nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
