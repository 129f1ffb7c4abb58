package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/skiffhq/skiff/internal/store"
)

const (
	defaultMax = 200
	maxMax     = 1000
)

// parseRange reads Heroku's Range header:
//
//	<field> [[]<first>]..[<last>][; max=<n>[,order=<asc|desc>]]
//
// The official CLI separates the parameters with "," or ";", adds spaces and
// sometimes a trailing ";", and may send an empty header; all are accepted.
// fields lists the sortable fields, the first being the default.
func parseRange(h string, fields ...string) (store.Page, error) {
	p := store.Page{Field: fields[0], Max: defaultMax}
	h = strings.TrimSpace(h)
	if h == "" {
		return p, nil
	}
	spec, params, _ := strings.Cut(h, ";")
	spec = strings.TrimSpace(spec)
	if field, bounds, ok := strings.Cut(spec, " "); ok {
		p.Field, spec = field, strings.TrimSpace(bounds)
	} else if !strings.Contains(spec, "..") {
		p.Field, spec = spec, ""
	}
	valid := false
	for _, f := range fields {
		valid = valid || f == p.Field
	}
	if !valid {
		return p, fmt.Errorf("cannot range over %q: sortable fields are %s", p.Field, strings.Join(fields, ", "))
	}
	if spec != "" {
		first, last, ok := strings.Cut(spec, "..")
		if !ok {
			return p, fmt.Errorf("range %q has no \"..\"", spec)
		}
		if strings.HasPrefix(first, "]") {
			p.StartExclusive, first = true, first[1:]
		}
		p.Start, p.End = first, last
	}
	for _, kv := range strings.FieldsFunc(params, func(r rune) bool { return r == ',' || r == ';' }) {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch strings.TrimSpace(k) {
		case "max":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return p, fmt.Errorf("max=%q is not a positive number", v)
			}
			p.Max = min(n, maxMax)
		case "order":
			switch strings.TrimSpace(v) {
			case "asc":
				p.Desc = false
			case "desc":
				p.Desc = true
			default:
				return p, fmt.Errorf("order=%q: expected asc or desc", v)
			}
		case "":
		default:
			return p, fmt.Errorf("unknown range parameter %q", k)
		}
	}
	return p, nil
}

// nextRange is the Range that asks for the page after one whose last item
// had value last.
func nextRange(p store.Page, last string) string {
	s := fmt.Sprintf("%s ]%s..%s; max=%d", p.Field, last, p.End, p.Max)
	if p.Desc {
		s += ", order=desc"
	}
	return s
}

// writePage sets the pagination headers of a list response: 206 with
// Next-Range only when more items remain, otherwise 200 without it (the
// CLI follows Next-Range regardless of status, so it must be absent on the
// last page).
func writePage(w http.ResponseWriter, p store.Page, more bool, first, last string, accept string) int {
	w.Header().Set("Accept-Ranges", accept)
	if first != "" {
		w.Header().Set("Content-Range", fmt.Sprintf("%s %s..%s", p.Field, first, last))
	}
	if more {
		w.Header().Set("Next-Range", nextRange(p, last))
		return http.StatusPartialContent
	}
	return http.StatusOK
}
