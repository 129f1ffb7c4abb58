// Package metrics exposes the platform's own figures in the Prometheus
// text format, without a client library: each part (logplex, drains, later
// the router) implements Source and writes its families itself.
package metrics

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Source writes metric families in the Prometheus text format (version
// 0.0.4), using Family and Sample.
type Source interface {
	WriteMetrics(w io.Writer)
}

// Registry serves the families of its sources at one endpoint.
type Registry struct {
	mu      sync.Mutex
	sources []Source
}

// Add makes s part of what the registry serves.
func (r *Registry) Add(s Source) {
	r.mu.Lock()
	r.sources = append(r.sources, s)
	r.mu.Unlock()
}

// ServeHTTP answers GET with every source's families.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.mu.Lock()
	srcs := append([]Source(nil), r.sources...)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	for _, s := range srcs {
		s.WriteMetrics(w)
	}
}

// Family writes the HELP and TYPE lines of a family ("counter", "gauge").
func Family(w io.Writer, name, typ, help string) {
	io.WriteString(w, "# HELP "+name+" "+escapeHelp(help)+"\n# TYPE "+name+" "+typ+"\n")
}

// Sample writes one sample; labels are name, value pairs.
func Sample(w io.Writer, name string, value float64, labels ...string) {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(escapeLabel(labels[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(value, 'g', -1, 64))
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}
