// Package cli is the `skiff` command-line client. It offers Heroku's
// command names, flags and output shapes over the Platform API, for
// servers the official CLI cannot reach (it only talks to localhost).
package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

// Env is one client invocation: where to talk, as whom, and the streams.
type Env struct {
	APIURL string
	Token  string
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	HTTP   *http.Client
}

// command is one client command.
type command struct {
	usage string // e.g. "config:set KEY=VALUE…"
	help  string
	run   func(e *Env, args []string) error
}

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

// Main runs the client with args (without the program name) and returns
// the exit code.
func Main(args []string, in io.Reader, out, errw io.Writer) int {
	e := &Env{In: in, Out: out, Err: errw, HTTP: &http.Client{Timeout: 60 * time.Second}}
	global := flag.NewFlagSet("skiff", flag.ContinueOnError)
	global.SetOutput(errw)
	global.StringVar(&e.APIURL, "api-url", "", "Skiff API URL ($SKIFF_API_URL, else the login file)")
	global.StringVar(&e.Token, "api-key", "", "API token ($SKIFF_API_KEY, else the login file)")
	global.Usage = func() { usage(errw) }
	if err := global.Parse(args); err != nil {
		return 2
	}
	args = global.Args()
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		usage(out)
		return 0
	}
	name := args[0]
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(errw, " ▸    %s is not a skiff command. See 'skiff help'.\n", name)
		return 2
	}
	if err := e.resolve(); err != nil && name != "login" {
		fmt.Fprintln(errw, " ▸    "+err.Error())
		return 1
	}
	if err := c.run(e, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		printError(errw, err)
		return 1
	}
	return 0
}

// resolve fills in the API URL and token from the environment and the
// login file, in that order after the flags.
func (e *Env) resolve() error {
	if e.APIURL == "" {
		e.APIURL = os.Getenv("SKIFF_API_URL")
	}
	if e.Token == "" {
		e.Token = os.Getenv("SKIFF_API_KEY")
	}
	if e.APIURL == "" || e.Token == "" {
		l, err := ReadLogin()
		if err != nil {
			return err
		}
		if e.APIURL == "" {
			e.APIURL = l.APIURL
		}
		if e.Token == "" && (l.APIURL == e.APIURL || l.APIURL == "") {
			e.Token = l.Token
		}
	}
	if e.APIURL == "" {
		return errors.New("no Skiff API URL: pass --api-url, set SKIFF_API_URL, or run 'skiff login'")
	}
	e.APIURL = strings.TrimRight(e.APIURL, "/")
	if e.Token == "" {
		return errors.New("not logged in: pass --api-key, set SKIFF_API_KEY, or run 'skiff login'")
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: skiff [--api-url URL] [--api-key TOKEN] COMMAND [ARGS]")
	fmt.Fprintln(w, "       skiff server [flags]    run the Skiff server (see 'skiff server --help')")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-28s %s\n", commands[n].usage, commands[n].help)
	}
}

// APIError is an error answer of the Platform API.
type APIError struct {
	Status  int
	ID      string `json:"id"`
	Message string `json:"message"`
}

func (e *APIError) Error() string { return e.Message }

func printError(w io.Writer, err error) {
	var ae *APIError
	if errors.As(err, &ae) {
		for _, line := range strings.Split(ae.Message, "\n") {
			fmt.Fprintln(w, " ▸    "+line)
		}
		if ae.ID != "" {
			fmt.Fprintln(w, " ▸\n ▸    Error ID: "+ae.ID)
		}
		return
	}
	fmt.Fprintln(w, " ▸    "+err.Error())
}

// Request describes one API call.
type Request struct {
	Method, Path string
	Body         any    // JSON-encoded when not nil
	Accept       string // the version variant, default "3"
	Range        string
	Partial      bool // take only the first page, as Range asked
}

// Do performs r and decodes a JSON answer into out (when not nil). It
// follows Next-Range so lists arrive whole.
func (e *Env) Do(r Request, out any) error {
	var all []json.RawMessage
	rng := r.Range
	for {
		resp, err := e.once(r, rng)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode >= 300 {
			ae := &APIError{Status: resp.StatusCode}
			if json.Unmarshal(body, ae) != nil || ae.Message == "" {
				ae.Message = fmt.Sprintf("%s %s: %s", r.Method, r.Path, resp.Status)
			}
			return ae
		}
		next := resp.Header.Get("Next-Range")
		if (next == "" || r.Partial) && all == nil {
			if out == nil || len(body) == 0 {
				return nil
			}
			return json.Unmarshal(body, out)
		}
		var page []json.RawMessage
		if err := json.Unmarshal(body, &page); err != nil {
			return err
		}
		all = append(all, page...)
		if next == "" || r.Partial {
			break
		}
		rng = next
	}
	if out == nil {
		return nil
	}
	b, _ := json.Marshal(all)
	return json.Unmarshal(b, out)
}

func (e *Env) once(r Request, rng string) (*http.Response, error) {
	var body io.Reader
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(r.Method, e.APIURL+r.Path, body)
	if err != nil {
		return nil, err
	}
	variant := r.Accept
	if variant == "" {
		variant = "3"
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version="+variant)
	req.Header.Set("User-Agent", "skiff-cli")
	if e.Token != "" {
		req.Header.Set("Authorization", "Bearer "+e.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Skiff API at %s: %w", e.APIURL, err)
	}
	return resp, nil
}
