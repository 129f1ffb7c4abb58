package logplex

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func frame(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

func TestParseFrames(t *testing.T) {
	t.Parallel()
	ok := frame("<190>1 2024-05-01T12:00:00.123456+00:00 host app web.1 - Hello world") +
		frame("<45>1 2024-05-01T12:00:01+00:00 host heroku router - at=info method=GET path=/") + "\n" +
		frame("<190>1 2024-05-01T12:00:02+00:00 h app worker.2 -") +
		frame("<190>1 2024-05-01T12:00:03+00:00 h app run.1234 - ünïcode and  double  spaces")
	got, err := ParseFrames([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	f := func(source, dyno, msg string) Frame { return Frame{Source: source, Dyno: dyno, Message: msg} }
	want := []Frame{f("app", "web.1", "Hello world"), f("heroku", "router", "at=info method=GET path=/"),
		f("app", "worker.2", ""), f("app", "run.1234", "ünïcode and  double  spaces")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("frames = %q, want %q", got, want)
	}
	for _, tc := range []struct{ name, body, err string }{
		{"no count", "<190>1 ts h app web.1 - x", "octet count"},
		{"count too big", "999999 x", "octet count"},
		{"truncated", "50 <190>1 ts h app web.1 - x", "announced"},
		{"zero", "0 ", "octet count"},
		{"no pri", frame("190>1 ts h app web.1 - x"), "no <PRI>"},
		{"bad pri", frame("<x>1 ts h app web.1 - x"), "invalid <PRI>"},
		{"version", frame("<190>2 ts h app web.1 - x"), "RFC 5424"},
		{"short header", frame("<190>1 ts h app"), "RFC 5424"},
		{"source", frame("<190>1 ts h postgres web.1 - x"), "APP-NAME"},
		{"no dyno", frame("<190>1 ts h app - - x"), "PROCID"},
		{"second bad", frame("<190>1 ts h app web.1 - x") + "3 abc", "frame 2"},
		{"signed count", "+5 <190>", "octet count"},
		{"signed pri", frame("<+1>1 ts h app web.1 - x"), "invalid <PRI>"},
	} {
		if _, err := ParseFrames([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.err)
		}
	}
	if f, err := ParseFrames(nil); err != nil || len(f) != 0 {
		t.Errorf("empty body: %v, %v", f, err)
	}
	// The caller reuses its buffer: the frames must not share it.
	b := []byte(ok)
	got, _ = ParseFrames(b)
	for i := range b {
		b[i] = 'x'
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("frames after the body was overwritten = %q, want %q", got, want)
	}
	// A stream's frames too, while the rest stays the caller's.
	first := frame("<190>1 ts h app web.1 - one")
	b = []byte(first + frame("<190>1 ts h app web.1 - two")[:9])
	got, rest, err := AppendStreamFrames(nil, b, 1)
	if err != nil || len(got) != 1 || string(rest) != string(b[len(first):]) {
		t.Fatalf("stream: %q, rest %q, %v", got, rest, err)
	}
	for i := range b {
		b[i] = 'x'
	}
	if got[0].Message != "one" {
		t.Errorf("stream frame after the body was overwritten = %q", got[0].Message)
	}
	// A stream is taken up to its first malformed frame, messages included.
	got, _, err = AppendStreamFrames(nil, []byte(first+frame("<190>1 ts h app web.1 - two")+"3 abc"), 1)
	if err == nil || len(got) != 2 || got[0].Message != "one" || got[1].Message != "two" {
		t.Errorf("stream with a bad third frame: %q, %v", got, err)
	}
}

// TestLogFrames: a batch's lines are queued in order, split and cleaned as
// Log does, with one timestamp.
func TestLogFrames(t *testing.T) {
	t.Parallel()
	l, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	frames, err := AppendFrames(nil, []byte(frame("<190>1 ts h app web.1 - one\ntwo")+frame("<45>1 ts h heroku web.1 - three")+
		frame("<190>1 ts h app we[b].2 - bad \xff byte")))
	if err != nil {
		t.Fatal(err)
	}
	l.LogFrames(testApp, frames)
	l.Sync()
	var got []string
	for _, ln := range l.History(testApp, 0) {
		got = append(got, ln.Source+"["+ln.Dyno+"]: "+ln.Message)
		if ln.Time != l.History(testApp, 0)[0].Time {
			t.Errorf("line %q has another time", ln.Message)
		}
	}
	want := []string{"app[web.1]: one", "app[web.1]: two", "heroku[web.1]: three", "app[we_b_.2]: bad \uFFFD byte"}
	if !slices.Equal(got, want) {
		t.Errorf("history = %q, want %q", got, want)
	}
}
