package dyno

import (
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/runtime"
)

// StatsReporter is a Process that can read its dyno's cgroup statistics,
// for log-runtime-metrics.
type StatsReporter interface {
	Stats() (runtime.Stats, error)
}

// Stats reads the container's cgroup statistics.
func (p *container) Stats() (runtime.Stats, error) { return p.c.Stats() }

// runtimeSampler writes an app's log-runtime-metrics lines for one run of a
// dyno's process: a new process gets a new sampler, so the dyno= id
// changes on every restart, as on Heroku.
type runtimeSampler struct {
	proc    Process
	id      string // heroku.<app id>.<uuid of this run>
	lastCPU time.Duration
	lastAt  time.Time
	load    [3]float64 // 1, 5 and 15 minute averages
}

// loadWindows are the load averages' time constants.
var loadWindows = [3]float64{60, 300, 900}

// sampleRuntime logs a dyno's load and memory lines (log-runtime-metrics),
// in Heroku's format:
//
//	source=web.1 dyno=heroku.<app>.<run> sample#load_avg_1m=0.01 sample#load_avg_5m=… sample#load_avg_15m=…
//	source=web.1 dyno=heroku.<app>.<run> sample#memory_total=21.00MB sample#memory_rss=… sample#memory_cache=…MB
//	  sample#memory_swap=…MB sample#memory_pgpgin=…pages sample#memory_pgpgout=…pages sample#memory_quota=512.00MB
//
// Linux keeps no load average per cgroup; the dyno's is the exponentially
// damped average of the CPUs its processes kept busy between samples (the
// CPU part of a load average), over 1, 5 and 15 minutes.
func (s *supervisor) sampleRuntime(p Process, u *Unit) {
	var st runtime.Stats
	switch r := p.(type) {
	case StatsReporter:
		var err error
		if st, err = r.Stats(); err != nil {
			return
		}
	case MemoryReporter:
		used, err := r.MemoryUsage()
		if err != nil {
			return
		}
		st.MemoryRSS = used
	default:
		return
	}
	now := s.m.cfg.Now()
	rs := s.rt
	if rs == nil || rs.proc != p {
		rs = &runtimeSampler{proc: p, id: "heroku." + u.AppID + "." + uuid.NewString(),
			lastAt: now.Add(-s.m.cfg.MemoryCheck)}
		s.rt = rs
	}
	if dt := now.Sub(rs.lastAt).Seconds(); dt > 0 {
		busy := max(0, (st.CPU-rs.lastCPU).Seconds()/dt)
		for i, w := range loadWindows {
			a := math.Exp(-dt / w)
			rs.load[i] = rs.load[i]*a + busy*(1-a)
		}
	}
	rs.lastCPU, rs.lastAt = st.CPU, now

	head := "source=" + u.Name + " dyno=" + rs.id
	b := []byte(head)
	for i, name := range [3]string{"1m", "5m", "15m"} {
		b = append(b, " sample#load_avg_"+name+"="...)
		b = strconv.AppendFloat(b, rs.load[i], 'f', 2, 64)
	}
	s.log("%s", b)

	mb := func(b []byte, name string, v uint64) []byte {
		b = append(b, " sample#memory_"+name+"="...)
		b = strconv.AppendFloat(b, float64(v)/(1<<20), 'f', 2, 64)
		return append(b, "MB"...)
	}
	b = append(b[:0], head...)
	b = mb(b, "total", st.MemoryRSS+st.MemoryCache+st.MemorySwap)
	b = mb(b, "rss", st.MemoryRSS)
	b = mb(b, "cache", st.MemoryCache)
	b = mb(b, "swap", st.MemorySwap)
	b = append(b, " sample#memory_pgpgin="...)
	b = append(strconv.AppendUint(b, st.MemoryPgpgin, 10), "pages"...)
	b = append(b, " sample#memory_pgpgout="...)
	b = append(strconv.AppendUint(b, st.MemoryPgpgout, 10), "pages"...)
	b = mb(b, "quota", uint64(u.Size.MemoryMB)<<20)
	s.log("%s", b)
}
