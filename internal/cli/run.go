package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/console"
)

func init() {
	register("run", command{
		usage: "run [--] COMMAND... -a APP", help: "run a one-off dyno attached to this terminal (trusts $SKIFF_CA_CERT besides the system's CAs)",
		flags: []flagDef{
			{Long: "env", Short: 'e', Value: true, Usage: "environment variables for the dyno: KEY=value;KEY2=value2"},
			{Long: "exit-code", Short: 'x', Usage: "exit with the remote command's exit status"},
			{Long: "size", Short: 's', Value: true, Usage: "dyno size"},
			{Long: "type", Value: true, Usage: "process type whose image to run"},
			{Long: "no-tty", Usage: "run the command without a terminal"},
		},
		app: appRequired, minArgs: 1, maxArgs: -1, run: runAttached,
	})
}

// exitMarker is what `heroku run -x` (and `skiff run -x`) append to the
// command to learn its exit status: the line carries it.
const exitMarker = "\uFFFF heroku-command-exit-status: "

// ExitError ends the client with Code after printing Message.
type ExitError struct {
	Code    int
	Message string
}

func (e *ExitError) Error() string { return e.Message }

// runAttached runs a one-off dyno attached to this terminal, speaking the
// rendezvous protocol as the heroku CLI does: TLS to the attach URL's
// host, the secret line, a greeting line, then raw bytes both ways; stdin
// that is not a terminal ends with 0x04 (Ctrl-D).
func runAttached(e *Env, in *Input) error {
	env, err := parseEnvFlag(in.String("env"))
	if err != nil {
		return err
	}
	cmd := strings.Join(in.Args, " ")
	if in.Bool("exit-code") {
		cmd += ` ; echo "` + exitMarker + `$?"`
	}
	env["TERM"] = firstNonEmpty(os.Getenv("TERM"), "xterm")
	stdin, inTTY := e.In.(*os.File)
	inTTY = inTTY && isTerminal(stdin) && !in.Bool("no-tty")
	stdout, outTTY := e.Out.(*os.File)
	outTTY = outTTY && isTerminal(stdout)
	if outTTY {
		if c, err := console.ConsoleFromFile(stdout); err == nil {
			if ws, err := c.Size(); err == nil && ws.Width > 0 {
				env["COLUMNS"], env["LINES"] = strconv.Itoa(int(ws.Width)), strconv.Itoa(int(ws.Height))
			}
		}
	}
	body := map[string]any{"command": cmd, "attach": true, "env": env}
	if s := in.String("size"); s != "" {
		body["size"] = s
	}
	if t := in.String("type"); t != "" {
		body["type"] = t
	}
	if in.Bool("no-tty") {
		body["force_no_tty"] = true
	}
	var d struct {
		dynoInfo
		AttachURL string `json:"attach_url"`
	}
	label := strings.Join(in.Args, " ")
	fmt.Fprintf(e.Err, "Running %s on %s... ", label, appLabel(in.App))
	if err := e.Do(Request{Method: "POST", Path: "/apps/" + escape(in.App) + "/dynos", Body: body}, &d); err != nil {
		fmt.Fprintln(e.Err, "!")
		return err
	}
	conn, err := rendezvous(d.AttachURL)
	if err != nil {
		fmt.Fprintln(e.Err, "!")
		return err
	}
	defer conn.Close()
	fmt.Fprintf(e.Err, "up, %s\n", d.Name)

	if inTTY {
		if c, err := console.ConsoleFromFile(stdin); err == nil && c.SetRaw() == nil {
			defer c.Reset()
		}
		go io.Copy(conn, stdin)
	} else {
		go func() {
			io.Copy(conn, e.In)
			conn.Write([]byte{0x04}) // end of input, as on a terminal
		}()
	}
	out := &exitScanner{w: e.Out, crlf: !outTTY, code: -1}
	if _, err := io.Copy(out, conn); err != nil && !errors.Is(err, net.ErrClosed) && !isEOF(err) {
		return fmt.Errorf("connection to %s: %w", d.Name, err)
	}
	out.flush()
	switch {
	case !in.Bool("exit-code"):
		return nil
	case out.code < 0:
		return errors.New("No exit code returned")
	case out.code > 0:
		return &ExitError{Code: out.code, Message: fmt.Sprintf("Process exited with code %d", out.code)}
	}
	return nil
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset")
}

func parseEnvFlag(s string) (map[string]string, error) {
	env := map[string]string{}
	if s == "" {
		return env, nil
	}
	for _, kv := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("Invalid --env %q: expected KEY=value;KEY2=value2", s)
		}
		env[k] = v
	}
	return env, nil
}

// rendezvous connects to an attach URL (rendezvous://HOST:PORT/SECRET),
// sends the secret and reads the greeting line.
func rendezvous(attachURL string) (net.Conn, error) {
	u, err := url.Parse(attachURL)
	if err != nil || u.Scheme != "rendezvous" || u.Port() == "" {
		return nil, fmt.Errorf("the server answered no usable attach URL (%q)", attachURL)
	}
	roots, err := trustedRoots()
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 30 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", u.Host, &tls.Config{RootCAs: roots, ServerName: u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("connecting to the dyno at %s: %w (set SKIFF_CA_CERT to the server's CA certificate, <data-dir>/pki/ca.pem, if it is Skiff's own)", u.Host, err)
	}
	line := strings.TrimPrefix(u.Path, "/")
	if u.RawQuery != "" {
		line += "?" + u.RawQuery
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		c.Close()
		return nil, fmt.Errorf("attaching to the dyno: %w", err)
	}
	var greeting []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(greeting, []byte("\n")) {
		if _, err := io.ReadFull(c, b); err != nil {
			c.Close()
			return nil, fmt.Errorf("attaching to the dyno: the server refused the connection (%v)", err)
		}
		if greeting = append(greeting, b[0]); len(greeting) > 256 {
			c.Close()
			return nil, errors.New("attaching to the dyno: unexpected greeting")
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// trustedRoots is the system's CA pool plus the certificate in
// $SKIFF_CA_CERT, if set (a Skiff server's own CA).
func trustedRoots() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if path := os.Getenv("SKIFF_CA_CERT"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("SKIFF_CA_CERT: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("SKIFF_CA_CERT: %s holds no PEM certificate", path)
		}
	}
	return pool, nil
}

// exitScanner passes a dyno's output on, turning "\r\n" into "\n" when
// crlf is set (output that is not a terminal), and takes out the exit
// status line of -x, keeping its status in code (-1: none yet).
type exitScanner struct {
	w       io.Writer
	crlf    bool
	pending []byte // the start of a line that may be the marker, or a lone trailing "\r"
	code    int
}

func (s *exitScanner) Write(p []byte) (int, error) {
	data := append(s.pending, p...)
	s.pending = nil
	var out []byte
	for len(data) > 0 {
		i := bytes.Index(data, []byte(exitMarker))
		if i < 0 {
			keep := partialSuffix(data, exitMarker)
			if s.crlf && keep == 0 && data[len(data)-1] == '\r' {
				keep = 1
			}
			out = append(out, data[:len(data)-keep]...)
			s.pending = append(s.pending, data[len(data)-keep:]...)
			break
		}
		out = append(out, data[:i]...)
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			s.pending = append(s.pending, data[i:]...)
			break
		}
		digits := strings.TrimSpace(string(data[i+len(exitMarker) : i+end]))
		if n, err := strconv.Atoi(digits); err == nil {
			s.code = n
		}
		data = data[i+end+1:]
	}
	if s.crlf {
		out = bytes.ReplaceAll(out, []byte("\r\n"), []byte("\n"))
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes what was held back.
func (s *exitScanner) flush() {
	s.w.Write(s.pending)
	s.pending = nil
}

// partialSuffix is the length of the longest suffix of b that is a proper
// prefix of marker.
func partialSuffix(b []byte, marker string) int {
	for n := min(len(b), len(marker)-1); n > 0; n-- {
		if string(b[len(b)-n:]) == marker[:n] {
			return n
		}
	}
	return 0
}
