package drain

import (
	"io"

	"github.com/skiffhq/skiff/internal/metrics"
)

// WriteMetrics writes the drains' figures: per running drain (labels app
// id and drain token) and the totals of drains since removed.
func (m *Manager) WriteMetrics(w io.Writer) {
	stats := m.Stats()
	for _, f := range []struct {
		name, typ, help string
		v               func(Stat) float64
	}{
		{"skiff_drain_lines_in_total", "counter", "Lines handed to a log drain.", func(s Stat) float64 { return float64(s.In) }},
		{"skiff_drain_lines_delivered_total", "counter", "Lines a log drain's receiver accepted.", func(s Stat) float64 { return float64(s.Delivered) }},
		{"skiff_drain_lines_dropped_total", "counter", "Lines a log drain lost (buffer overflow, refused or given-up batches), reported as L10.", func(s Stat) float64 { return float64(s.Dropped) }},
		{"skiff_drain_errors_total", "counter", "Failed connections, writes and requests of a log drain.", func(s Stat) float64 { return float64(s.Errors) }},
		{"skiff_drain_buffered_lines", "gauge", "Lines waiting in a log drain's buffer.", func(s Stat) float64 { return float64(s.Buffered) }},
	} {
		metrics.Family(w, f.name, f.typ, f.help)
		for _, s := range stats {
			metrics.Sample(w, f.name, f.v(s), "app_id", s.AppID, "drain", s.Token, "scheme", s.Scheme)
		}
	}
	metrics.Family(w, "skiff_drains", "gauge", "Log drains running.")
	metrics.Sample(w, "skiff_drains", float64(len(stats)))
	metrics.Family(w, "skiff_drain_removed_lines_total", "counter", "Lines of log drains since removed, by outcome.")
	metrics.Sample(w, "skiff_drain_removed_lines_total", float64(m.gone.delivered.Load()), "outcome", "delivered")
	metrics.Sample(w, "skiff_drain_removed_lines_total", float64(m.gone.dropped.Load()), "outcome", "dropped")
}
