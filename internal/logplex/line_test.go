package logplex

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRender(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC).UnixMicro()
	tests := []struct {
		name string
		line Line
		want string
	}{
		{"app line", Line{Time: at, Source: "app", Dyno: "web.1", Message: "hello"},
			"2024-05-01T12:00:00.123456+00:00 app[web.1]: hello"},
		{"router", Line{Time: at, Source: "heroku", Dyno: "router", Message: `at=info method=GET path="/"`},
			`2024-05-01T12:00:00.123456+00:00 heroku[router]: at=info method=GET path="/"`},
		{"whole second keeps six digits", Line{Time: time.Date(2010, 9, 16, 15, 13, 46, 0, time.UTC).UnixMicro(), Source: "app", Dyno: "api", Message: "Release v3 created by user a@b.c"},
			"2010-09-16T15:13:46.000000+00:00 app[api]: Release v3 created by user a@b.c"},
		{"other zone rendered in UTC", Line{Time: time.Date(2024, 5, 1, 14, 0, 0, 500000, time.FixedZone("CEST", 2*3600)).UnixMicro(), Source: "app", Dyno: "run.1234", Message: ""},
			"2024-05-01T12:00:00.000500+00:00 app[run.1234]: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.line.String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSplitMessage(t *testing.T) {
	long := strings.Repeat("a", 25000)
	// "é" is two bytes; put one across the 10 000-byte boundary.
	across := strings.Repeat("a", 9999) + "é" + "bc"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"plain", "hello", []string{"hello"}},
		{"empty", "", []string{""}},
		{"exactly the limit", strings.Repeat("x", MaxLineBytes), []string{strings.Repeat("x", MaxLineBytes)}},
		{"long", long, []string{long[:10000], long[10000:20000], long[20000:]}},
		{"cut before a character", across, []string{strings.Repeat("a", 9999), "ébc"}},
		{"newlines", "one\ntwo\n\nthree", []string{"one", "two", "", "three"}},
		{"trailing newline adds nothing", "one\n", []string{"one"}},
		{"CRLF and CR", "a\r\nb\rc", []string{"a", "b", "c"}},
		{"invalid UTF-8 bytes replaced one by one", "ok \xff\xfe end", []string{"ok \uFFFD\uFFFD end"}},
		{"truncated sequence", "caf\xc3", []string{"caf\uFFFD"}},
		{"valid multibyte kept", "naïve ☃ 🚀", []string{"naïve ☃ 🚀"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if plain(tt.in) {
				got = []string{tt.in}
			} else {
				splitMessage(tt.in, func(s string) { got = append(got, s) })
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d pieces %q, want %d", len(got), abbreviate(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("piece %d = %q, want %q", i, abbreviate(got[i:i+1]), abbreviate(tt.want[i:i+1]))
				}
				if len(got[i]) > MaxLineBytes || !utf8.ValidString(got[i]) || strings.ContainsAny(got[i], "\r\n") {
					t.Errorf("piece %d (%d bytes) is not a clean line", i, len(got[i]))
				}
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web.1", "web.1"},
		{"heroku-postgres", "heroku-postgres"},
		{"bad name]\n", "bad_name__"},
		{strings.Repeat("n", 70), strings.Repeat("n", 64)},
	}
	for _, tt := range tests {
		if got := cleanName(tt.in); got != tt.want {
			t.Errorf("cleanName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	lines := []Line{
		{Source: "app", Dyno: "web.1"}, {Source: "app", Dyno: "web.2"}, {Source: "app", Dyno: "webhook.1"},
		{Source: "heroku", Dyno: "web.1"}, {Source: "heroku", Dyno: "router"}, {Source: "app", Dyno: "api"},
		{Source: "app", Dyno: "run.1234"}, {Source: "app", Dyno: "web"},
	}
	tests := []struct {
		source, dyno string
		want         string // indexes of matching lines
	}{
		{"", "", "01234567"},
		{"app", "", "012567"},
		{"heroku", "", "34"},
		{"", "web", "0137"},
		{"", "web.1", "03"},
		{"app", "web.1", "0"},
		{"", "router", "4"},
		{"", "api", "5"},
		{"", "run", "6"},
		{"", "run.1234", "6"},
		{"", "we", ""},
		{"heroku", "api", ""},
	}
	for _, tt := range tests {
		f := newFilter(tt.source, tt.dyno)
		var got strings.Builder
		for i := range lines {
			if f.match(&lines[i]) {
				got.WriteByte(byte('0' + i))
			}
		}
		if got.String() != tt.want {
			t.Errorf("source %q dyno %q matched %q, want %q", tt.source, tt.dyno, got.String(), tt.want)
		}
	}
}

func abbreviate(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > 40 {
			s = fmt.Sprintf("%s…[%d bytes]…%s", s[:20], len(s), s[len(s)-10:])
		}
		out[i] = s
	}
	return out
}

// TestAppendTimestamp checks the hand-written calendar against the time
// package: edges of days, months, leap years, centuries and the epoch, a
// sweep across four centuries, and years it hands back to time.
func TestAppendTimestamp(t *testing.T) {
	want := func(us int64) string { return time.UnixMicro(us).UTC().Format(timeLayout) }
	var cases []int64
	for _, d := range []time.Time{
		time.Unix(0, 0), time.Unix(-1, 0), time.Unix(0, -1000),
		time.Date(2000, 2, 29, 23, 59, 59, 999999000, time.UTC),
		time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 2, 28, 12, 0, 0, 1000, time.UTC),
		time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		cases = append(cases, d.UnixMicro())
	}
	from := time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	to := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for us := from; us < to; us += 86_400_000_000/7 + 1_234_567 {
		cases = append(cases, us)
	}
	for _, us := range cases {
		if got := string(AppendTimestamp([]byte("x"), us)); got != "x"+want(us) {
			t.Fatalf("AppendTimestamp(%d) = %q, want %q", us, got[1:], want(us))
		}
	}
}
