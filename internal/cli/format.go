package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// The helpers below reproduce the output shapes of Heroku's CLI (its
// styled headers, key/value blocks, tables and JSON), without colours:
// what a user sees when piping the official CLI's output.

// appLabel is how Heroku's CLI names an app in progress lines.
func appLabel(name string) string { return "⬢ " + name }

// header prints a section heading followed by a blank line.
func header(w io.Writer, title string) {
	fmt.Fprintf(w, "=== %s\n\n", title)
}

// field is one entry of a key/value block. Value is a string (always
// shown, even empty), a []string (shown one per line, omitted when empty)
// or nil (omitted).
type field struct {
	Key   string
	Value any
}

// styledObject prints fields as an aligned block:
//
//	Git URL: https://…
//	Owner:   me@example.com
func styledObject(w io.Writer, fields []field) {
	width := 0
	for _, f := range fields {
		if shown(f.Value) {
			width = max(width, utf8.RuneCountInString(f.Key))
		}
	}
	width += 2
	var lines []string
	for _, f := range fields {
		if !shown(f.Value) {
			continue
		}
		label := f.Key + ":" + strings.Repeat(" ", max(0, width-utf8.RuneCountInString(f.Key)-1))
		switch v := f.Value.(type) {
		case []string:
			lines = append(lines, label+v[0])
			for _, s := range v[1:] {
				lines = append(lines, strings.Repeat(" ", width)+s)
			}
		default:
			lines = append(lines, label+fmt.Sprint(v))
		}
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

func shown(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case []string:
		return len(v) > 0
	}
	return true
}

// table prints rows under headings, the way Heroku's CLI draws its tables:
// a heading line, an underline, then one line per row, each cell padded to
// its column's width plus one space on either side; then a blank line.
func table(w io.Writer, headings []string, rows [][]string) {
	widths := make([]int, len(headings))
	for i, h := range headings {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i := range headings {
			if i < len(r) {
				widths[i] = max(widths[i], utf8.RuneCountInString(r[i]))
			}
		}
	}
	line := func(cells []string) string {
		var b strings.Builder
		b.WriteString(" ")
		for i := range headings {
			cell := ""
			if i < len(cells) {
				cell = cells[i]
			}
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(" " + cell + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+1))
		}
		return strings.TrimRight(b.String(), " ")
	}
	total := len(widths) - 1
	for _, n := range widths {
		total += n + 2
	}
	fmt.Fprintln(w, line(headings))
	fmt.Fprintln(w, " "+strings.Repeat("─", total))
	for _, r := range rows {
		fmt.Fprintln(w, line(r))
	}
	fmt.Fprintln(w)
}

// printJSON prints v as indented JSON, as Heroku's --json flags do. Raw
// API answers (json.RawMessage) keep their field order.
func printJSON(w io.Writer, v any) error {
	var raw []byte
	switch v := v.(type) {
	case json.RawMessage:
		raw = v
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		raw = buf.Bytes()
	}
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(raw), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// ago formats a timestamp as Heroku's releases list does:
// "2026/01/02 15:04:05 +0000 (~ 3m ago)"; after a day, only the date.
func ago(t, now time.Time) string {
	s := t.Local().Format("2006/01/02 15:04:05 -0700")
	elapsed := int64(now.Sub(t) / time.Second)
	switch {
	case elapsed < 60:
		return fmt.Sprintf("%s (~ %ds ago)", s, elapsed)
	case elapsed < 60*60:
		return fmt.Sprintf("%s (~ %dm ago)", s, elapsed/60)
	case elapsed < 60*60*25:
		return fmt.Sprintf("%s (~ %dh ago)", s, elapsed/3600)
	}
	return s
}

// fileSize formats a byte count as Heroku's apps:info does (JEDEC units,
// rounded to whole numbers): 0 B, 12 KB, 5 MB.
func fileSize(n *int64) string {
	var v float64
	if n != nil {
		v = float64(*n)
	}
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	if v > 0 {
		i = min(int(math.Floor(math.Log(v)/math.Log(1024))), len(units)-1)
	}
	r := math.Round(v / math.Pow(1024, float64(i)))
	if r == 1024 && i < len(units)-1 {
		r, i = 1, i+1
	}
	return fmt.Sprintf("%d %s", int64(r), units[i])
}

// joinNames lists names as Heroku's progress lines do: "A, B".
func joinNames(names []string) string { return strings.Join(names, ", ") }
