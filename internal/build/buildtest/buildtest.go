// Package buildtest makes what build tests start from: a small root
// filesystem to import as a base image, from Debian's busybox-static.
package buildtest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"testing"
)

// Applets are the commands the root filesystem links to busybox.
var Applets = []string{"sh", "echo", "cat", "ls", "mkdir", "rm", "touch", "test", "true", "false",
	"sleep", "id", "env", "wc", "head", "seq", "yes", "dd", "sync", "cp", "ln", "chmod", "grep", "printf"}

// BusyboxRootfs returns a tarball of a small root filesystem: the static
// /bin/busybox (package busybox-static, installed by scripts/install-deps)
// with links for Applets, /etc/passwd and /etc/group with root and app
// (1000), and /tmp.
func BusyboxRootfs(t testing.TB) []byte {
	t.Helper()
	b, err := BusyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BusyboxTar is BusyboxRootfs outside tests (benchmarks).
func BusyboxTar() ([]byte, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("busybox-static (scripts/install-deps): %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) {
		tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode})
	}
	file := func(name string, mode int64, body []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body))})
		tw.Write(body)
	}
	for _, d := range []string{"bin", "etc", "usr", "usr/bin", "root", "home", "home/app"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	file("bin/busybox", 0o755, bb)
	for _, a := range Applets {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	}
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"))
	file("etc/group", 0o644, []byte("root:x:0:\napp:x:1000:\n"))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WebApp is a Go web app (standard library only) for images built in
// tests: compile it with imagetest.GoBinary and copy the binary in, so
// that nothing is downloaded at build time. It answers "built from
// source" on $PORT.
const WebApp = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "built from source") })
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
`
