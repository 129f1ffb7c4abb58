package logplex

import (
	"io"

	"github.com/skiffhq/skiff/internal/metrics"
)

// WriteMetrics writes the pipeline's counters (Metrics) in the Prometheus
// text format.
func (l *Logplex) WriteMetrics(w io.Writer) {
	m := l.Metrics()
	for _, f := range []struct {
		name, typ, help string
		v               float64
	}{
		{"skiff_logplex_lines_in_total", "counter", "Lines queued into the apps' log channels.", float64(m.LinesIn)},
		{"skiff_logplex_lines_stored_total", "counter", "Lines committed to the history and handed to sessions and drains.", float64(m.LinesStored)},
		{"skiff_logplex_dropped_queue_total", "counter", "Lines dropped because a channel's queue was full.", float64(m.DroppedQueue)},
		{"skiff_logplex_dropped_closed_total", "counter", "Lines for a destroyed app or a closed pipeline.", float64(m.DroppedClosed)},
		{"skiff_logplex_dropped_tail_total", "counter", "Lines tail sessions missed (reported to them as L11).", float64(m.DroppedTail)},
		{"skiff_logplex_write_errors_total", "counter", "Failed writes of the history files.", float64(m.WriteErrors)},
		{"skiff_logplex_streams", "gauge", "Log session streams open now.", float64(m.Streams)},
	} {
		metrics.Family(w, f.name, f.typ, f.help)
		metrics.Sample(w, f.name, f.v)
	}
}
