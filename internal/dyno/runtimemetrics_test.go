package dyno

import (
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

func TestLogRuntimeMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MemoryCheck = 10 * time.Millisecond })
	app := e.app("metered", "")
	e.config("metered", "MEM", "100")
	e.eventually("on v4", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v4" })
	time.Sleep(50 * time.Millisecond)
	if n := e.logs.count("sample#"); n != 0 {
		t.Fatalf("%d sample lines without the feature", n)
	}
	if _, err := e.p.SetAppFeature(e.ctx, e.admin, "metered", "log-runtime-metrics", true); err != nil {
		t.Fatal(err)
	}
	id := `heroku\.` + regexp.QuoteMeta(app.ID) + `\.[0-9a-f-]{36}`
	load := regexp.MustCompile(`^heroku\[web\.1\]: source=web\.1 dyno=(` + id + `) sample#load_avg_1m=\d+\.\d\d sample#load_avg_5m=\d+\.\d\d sample#load_avg_15m=\d+\.\d\d$`)
	mem := regexp.MustCompile(`^heroku\[web\.1\]: source=web\.1 dyno=(` + id + `) sample#memory_total=100\.00MB sample#memory_rss=100\.00MB sample#memory_cache=0\.00MB sample#memory_swap=0\.00MB sample#memory_pgpgin=0pages sample#memory_pgpgout=0pages sample#memory_quota=512\.00MB$`)
	runs := func() map[string]bool {
		e.logs.mu.Lock()
		defer e.logs.mu.Unlock()
		ids := map[string]bool{}
		for i, l := range e.logs.lines {
			if m := load.FindStringSubmatch(l); m != nil && i+1 < len(e.logs.lines) {
				if mm := mem.FindStringSubmatch(e.logs.lines[i+1]); mm != nil && mm[1] == m[1] {
					ids[m[1]] = true
				}
			}
		}
		return ids
	}
	// The feature takes effect when the dynos restart, as on Heroku; each
	// run has its own dyno= id.
	e.config("metered", "A", "1")
	e.eventually("samples of one run", func() bool { return len(runs()) == 1 })
	e.config("metered", "A", "2")
	e.eventually("samples of a second run", func() bool { return len(runs()) == 2 })
}

// TestLogRuntimeMetricsFromCgroup reads a real container's cgroup: the web
// app's memory is not zero, and the figures are consistent.
func TestLogRuntimeMetricsFromCgroup(t *testing.T) {
	t.Parallel()
	e, img := newContainerEnv(t, "10.213.240.0/24", func(_ *ContainerRunner, c *Config) { c.MemoryCheck = 50 * time.Millisecond })
	app, err := e.p.CreateApp(e.ctx, e.admin, platform.AppSpec{Name: "sampled"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.SetAppFeature(e.ctx, e.admin, "sampled", "log-runtime-metrics", true); err != nil {
		t.Fatal(err)
	}
	e.deployImage("sampled", img, "web")
	mem := regexp.MustCompile(`^heroku\[web\.1\]: source=web\.1 dyno=heroku\.` + regexp.QuoteMeta(app.ID) + `\.[0-9a-f-]{36} sample#memory_total=(\d+\.\d\d)MB sample#memory_rss=(\d+\.\d\d)MB sample#memory_cache=(\d+\.\d\d)MB sample#memory_swap=(\d+\.\d\d)MB sample#memory_pgpgin=(\d+)pages sample#memory_pgpgout=\d+pages sample#memory_quota=512\.00MB$`)
	e.eventually("a memory sample", func() bool { return len(e.logs.matching("sample#memory_total=")) > 0 })
	l := e.logs.matching("sample#memory_total=")[0]
	m := mem.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("memory line %q", l)
	}
	f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	if total, rss := f(m[1]), f(m[2]); rss <= 0 || total < rss || math.Abs(total-(rss+f(m[3])+f(m[4]))) > 0.02 {
		t.Errorf("%q: want rss > 0 and total = rss + cache + swap", l)
	}
	if f(m[5]) == 0 {
		t.Errorf("%q: no pages read in", l)
	}
	if len(e.logs.matching("sample#load_avg_1m=")) == 0 {
		t.Error("no load line")
	}
	e.scale("sampled", "web", 0)
	e.eventually("gone", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
}
