package cli

import (
	"bytes"
	"testing"
)

// TestExitScanner: the -x status line is taken out of the output wherever
// the chunks split it, and "\r\n" becomes "\n" for output that is no
// terminal.
func TestExitScanner(t *testing.T) {
	out := "hi\r\nthere\r\n" + exitMarker + "3\r\n"
	for _, tc := range []struct {
		name  string
		crlf  bool
		split int // bytes per chunk
		want  string
		code  int
	}{
		{"whole", true, len(out), "hi\nthere\n", 3},
		{"bytewise", true, 1, "hi\nthere\n", 3},
		{"chunks of 5", true, 5, "hi\nthere\n", 3},
		{"terminal", false, 7, "hi\r\nthere\r\n", 3},
	} {
		var b bytes.Buffer
		s := &exitScanner{w: &b, crlf: tc.crlf, code: -1}
		for i := 0; i < len(out); i += tc.split {
			s.Write([]byte(out[i:min(i+tc.split, len(out))]))
		}
		s.flush()
		if b.String() != tc.want || s.code != tc.code {
			t.Errorf("%s: output %q, code %d; want %q, %d", tc.name, b.String(), s.code, tc.want, tc.code)
		}
	}
	var b bytes.Buffer
	s := &exitScanner{w: &b, crlf: true, code: -1}
	s.Write([]byte("no marker \xef\xbf"))
	s.flush()
	if b.String() != "no marker \xef\xbf" || s.code != -1 {
		t.Errorf("without a marker: %q, %d", b.String(), s.code)
	}
}
