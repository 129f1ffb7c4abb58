// Command registry benchmarks the embedded container registry: push and
// pull throughput of a multi-layer image of random bytes (about 200 MB),
// with the same client (crane, built from the module) against Skiff's
// registry and, in the same run, against Debian's docker-registry (CNCF
// distribution 2.8) on the same machine. Figures are printed, never
// asserted; the ratio Skiff/peer is what compares across machines.
//
//	go run ./bench/registry [-size 200] [-layers 8] [-repeats 3] [-skiff bin/skiff]
//
// docker-registry comes with `scripts/install-deps --bench`. See
// bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/skiffhq/skiff/bench/skiffserver"
)

func main() {
	size := flag.Int("size", 200, "image size in MB (random bytes: layers do not compress)")
	layers := flag.Int("layers", 8, "number of layers")
	repeats := flag.Int("repeats", 3, "pushes and pulls per registry (the median is reported)")
	skiff := flag.String("skiff", "", "skiff binary (default: build ./cmd/skiff)")
	peerBin := flag.String("peer", "docker-registry", "the peer registry binary (CNCF distribution)")
	flag.Parse()
	if err := run(*size, *layers, *repeats, *skiff, *peerBin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/registry:", err)
		os.Exit(1)
	}
}

func run(sizeMB, nLayers, repeats int, skiffBin, peerBin string) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "skiff-bench-registry-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if skiffBin == "" {
		if skiffBin, err = skiffserver.Build(ctx, tmp); err != nil {
			return err
		}
	}
	crane := filepath.Join(tmp, "crane")
	if out, err := exec.Command("go", "build", "-o", crane, "github.com/google/go-containerregistry/cmd/crane").CombinedOutput(); err != nil {
		return fmt.Errorf("build crane: %v\n%s", err, out)
	}

	fmt.Fprintf(os.Stderr, "generating a %d MB image of %d layers...\n", sizeMB, nLayers)
	img, err := random.Image(int64(sizeMB)<<20/int64(nLayers), int64(nLayers))
	if err != nil {
		return err
	}
	src := filepath.Join(tmp, "image")
	lp, err := layout.Write(src, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendImage(img); err != nil {
		return err
	}
	var total int64
	ls, _ := img.Layers()
	for _, l := range ls {
		n, _ := l.Size()
		total += n
	}

	// Skiff.
	srv, err := skiffserver.Start(ctx, skiffserver.Options{Binary: skiffBin, Dir: tmp, DataDir: filepath.Join(tmp, "data"),
		Args: []string{"--dynos=false"}, StartTimeout: time.Minute, StopTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer srv.Stop()
	if err := createApp(srv.URL, srv.Token, "bench"); err != nil {
		return err
	}
	// Peer.
	peerAddr, stopPeer, err := startPeer(peerBin, tmp)
	if err != nil {
		return err
	}
	defer stopPeer()

	cfg := filepath.Join(tmp, "docker")
	craneRun := func(args ...string) (time.Duration, error) {
		cmd := exec.Command(crane, args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("crane %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return time.Since(start), nil
	}
	if _, err := craneRun("auth", "login", srv.Registry, "-u", "_", "-p", srv.Token); err != nil {
		return err
	}

	type target struct{ name, host string }
	targets := []target{{"skiff", srv.Registry}, {"docker-registry 2.8 (peer)", peerAddr}}
	results := map[string]map[string][]time.Duration{}
	for _, t := range targets {
		results[t.name] = map[string][]time.Duration{}
	}
	for i := range repeats {
		for _, t := range targets { // interleaved, so that load from the shared machine hits both
			ref := fmt.Sprintf("%s/bench/web%d:latest", t.host, i)
			d, err := craneRun("push", "--insecure", src, ref)
			if err != nil {
				return err
			}
			results[t.name]["push"] = append(results[t.name]["push"], d)
			out := filepath.Join(tmp, fmt.Sprintf("pull-%d", i))
			d, err = craneRun("pull", "--insecure", "--format", "oci", ref, out)
			if err != nil {
				return err
			}
			os.RemoveAll(out)
			results[t.name]["pull"] = append(results[t.name]["pull"], d)
		}
	}
	mb := float64(total) / (1 << 20)
	fmt.Printf("image: %.0f MB in %d layers (random bytes, gzip), client: crane %s, %d runs each, median\n\n", mb, nLayers, "(go-containerregistry v0.22.1)", repeats)
	fmt.Printf("| registry | push MB/s | pull MB/s |\n|---|---|---|\n")
	med := map[string]map[string]float64{}
	for _, t := range targets {
		med[t.name] = map[string]float64{}
		for _, op := range []string{"push", "pull"} {
			med[t.name][op] = mb / median(results[t.name][op]).Seconds()
		}
		fmt.Printf("| %s | %.0f | %.0f |\n", t.name, med[t.name]["push"], med[t.name]["pull"])
	}
	a, b := med[targets[0].name], med[targets[1].name]
	fmt.Printf("| ratio skiff/peer | %.2f | %.2f |\n", a["push"]/b["push"], a["pull"]/b["pull"])
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func createApp(apiURL, token, name string) error {
	req, _ := http.NewRequest("POST", apiURL+"/apps", strings.NewReader(`{"name":"`+name+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return fmt.Errorf("create app: %s", resp.Status)
	}
	return nil
}

// startPeer runs docker-registry with filesystem storage under dir on a
// free loopback port, and waits until it answers.
func startPeer(bin, dir string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "peer.yml")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "peer"), addr)), 0o644)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", conf)
	logf, err := os.Create(filepath.Join(dir, "peer.log"))
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", bin, err)
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr, stop, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	b, _ := os.ReadFile(filepath.Join(dir, "peer.log"))
	return "", nil, fmt.Errorf("%s did not answer on %s:\n%s", bin, addr, b)
}
