// Package cli is the `skiff` command-line client. It offers Heroku's
// command names, flags and output shapes over the Platform API, for
// servers the official CLI cannot reach (it only talks to localhost).
//
// As in Heroku's CLI, progress lines ("Creating ⬢ myapp... done") and
// warnings go to stderr; data (tables, config vars, JSON) goes to stdout,
// so scripts can capture it.
package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	Now    func() time.Time
}

// appMode says whether a command acts on an app.
type appMode int

const (
	noApp       appMode = iota
	appRequired         // -a/--app, else $SKIFF_APP/$HEROKU_APP, else an error
	appOptional         // as above, but the command copes without one
)

// command is one client command.
type command struct {
	usage   string // e.g. "config:set KEY=VALUE..."
	help    string
	flags   []flagDef
	app     appMode
	minArgs int
	maxArgs int  // -1: any number
	noAuth  bool // runs without a token (login, logout)
	run     func(e *Env, in *Input) error
}

var (
	commands = map[string]command{}
	aliases  = map[string]string{}
)

func register(name string, c command, alias ...string) {
	commands[name] = c
	for _, a := range alias {
		aliases[a] = name
	}
}

// Flags every command accepts.
var (
	globalFlags = []flagDef{
		{Long: "api-url", Value: true, Usage: "Skiff API URL ($SKIFF_API_URL, else the login file)"},
		{Long: "api-key", Value: true, Usage: "API token ($SKIFF_API_KEY, else the login file)"},
		{Long: "help", Short: 'h', Usage: "show this command's help"},
	}
	appFlag  = flagDef{Long: "app", Short: 'a', Value: true, Usage: "app to run command against ($SKIFF_APP, $HEROKU_APP)"}
	jsonFlag = flagDef{Long: "json", Short: 'j', Usage: "output in json format"}
)

// Main runs the client with args (without the program name) and returns
// the exit code.
func Main(args []string, in io.Reader, out, errw io.Writer) int {
	e := &Env{In: in, Out: out, Err: errw, HTTP: &http.Client{Timeout: 60 * time.Second}, Now: time.Now}
	global := flag.NewFlagSet("skiff", flag.ContinueOnError)
	global.SetOutput(errw)
	global.StringVar(&e.APIURL, "api-url", "", "Skiff API URL ($SKIFF_API_URL, else the login file)")
	global.StringVar(&e.Token, "api-key", "", "API token ($SKIFF_API_KEY, else the login file)")
	global.Usage = func() { usage(errw) }
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	args = global.Args()
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		usage(out)
		return 0
	}
	if args[0] == "help" {
		if len(args) > 1 {
			if name, c, ok := lookup(args[1]); ok {
				commandHelp(out, name, c)
				return 0
			}
		}
		usage(out)
		return 0
	}
	name, c, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(errw, " ▸    %s is not a skiff command. See 'skiff help'.\n", args[0])
		return 1
	}
	if err := e.run(name, c, args[1:]); err != nil {
		var xe *ExitError
		if errors.As(err, &xe) { // the remote command's status (skiff run -x)
			fmt.Fprintln(errw, " ▸    "+xe.Message)
			return xe.Code
		}
		printError(errw, err)
		var fe *flagError
		if errors.As(err, &fe) {
			fmt.Fprintf(errw, " ▸    See more help with: skiff help %s\n", name)
		}
		return 1
	}
	return 0
}

func lookup(name string) (string, command, bool) {
	if real, ok := aliases[name]; ok {
		name = real
	}
	c, ok := commands[name]
	return name, c, ok
}

// run parses a command's arguments, finds the app, the API and the token,
// and runs it.
func (e *Env) run(name string, c command, args []string) error {
	defs := append([]flagDef{}, c.flags...)
	if c.app != noApp {
		defs = append(defs, appFlag)
	}
	defs = append(defs, globalFlags...)
	in, err := parseArgs(args, defs)
	if err != nil {
		return err
	}
	if in.Bool("help") {
		commandHelp(e.Out, name, c)
		return nil
	}
	if v := in.String("api-url"); v != "" {
		e.APIURL = v
	}
	if v := in.String("api-key"); v != "" {
		e.Token = v
	}
	if c.app != noApp {
		in.App = firstNonEmpty(in.String("app"), envApp())
		if c.app == appRequired && in.App == "" {
			return flagErrorf("Missing required flag app")
		}
	}
	if len(in.Args) < c.minArgs {
		return flagErrorf("Missing required argument.\nUsage: skiff %s", c.usage)
	}
	if c.maxArgs >= 0 && len(in.Args) > c.maxArgs {
		return flagErrorf("Unexpected argument: %s\nUsage: skiff %s", in.Args[c.maxArgs], c.usage)
	}
	if !c.noAuth {
		if err := e.resolve(); err != nil {
			return err
		}
	}
	return c.run(e, in)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// resolveURL fills in the API URL: flag, then $SKIFF_API_URL, then the
// login file.
func (e *Env) resolveURL() error {
	if e.APIURL == "" {
		e.APIURL = os.Getenv("SKIFF_API_URL")
	}
	if e.APIURL == "" {
		l, err := ReadLogin()
		if err != nil {
			return err
		}
		e.APIURL = l.APIURL
	}
	if e.APIURL == "" {
		return errors.New("no Skiff API URL: pass --api-url, set SKIFF_API_URL, or run 'skiff login --api-url URL'")
	}
	e.APIURL = strings.TrimRight(e.APIURL, "/")
	return nil
}

// resolve fills in the API URL and the token from the flags, the
// environment and the login file, in that order. The login file's token
// is used only for the server it was issued by.
func (e *Env) resolve() error {
	if err := e.resolveURL(); err != nil {
		return err
	}
	if e.Token == "" {
		e.Token = os.Getenv("SKIFF_API_KEY")
	}
	if e.Token == "" {
		l, err := ReadLogin()
		if err != nil {
			return err
		}
		if l.APIURL == "" || strings.TrimRight(l.APIURL, "/") == e.APIURL {
			e.Token = l.Token
		}
	}
	if e.Token == "" {
		return errors.New("not logged in: pass --api-key, set SKIFF_API_KEY, or run 'skiff login'")
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: skiff [--api-url URL] [--api-key TOKEN] COMMAND [ARGS] [-a APP]")
	fmt.Fprintln(w, "       skiff server [flags]    run the Skiff server (see 'skiff server --help')")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].help)
	}
	fmt.Fprintln(w, "\nCommands that act on an app take -a APP (else $SKIFF_APP, else $HEROKU_APP).")
	fmt.Fprintln(w, "Run 'skiff help COMMAND' for a command's arguments and flags.")
}

func commandHelp(w io.Writer, name string, c command) {
	fmt.Fprintf(w, "Usage: skiff %s\n\n%s\n", c.usage, c.help)
	var al []string
	for a, n := range aliases {
		if n == name {
			al = append(al, a)
		}
	}
	if len(al) > 0 {
		sort.Strings(al)
		fmt.Fprintf(w, "\nAliases: %s\n", strings.Join(al, ", "))
	}
	defs := append([]flagDef{}, c.flags...)
	if c.app != noApp {
		defs = append(defs, appFlag)
	}
	defs = append(defs, globalFlags...)
	fmt.Fprintln(w, "\nFlags:")
	for _, d := range defs {
		spec := "    --" + d.Long
		if d.Short != 0 {
			spec = fmt.Sprintf("-%c, --%s", d.Short, d.Long)
		}
		if d.Value {
			spec += " " + strings.ToUpper(strings.ReplaceAll(d.Long, "-", "_"))
		}
		fmt.Fprintf(w, "  %-28s %s\n", spec, d.Usage)
	}
}

// action runs f between a progress line's start ("Creating ⬢ myapp...")
// and its end (" done", or the status f returns); a failure ends it with
// " !". As in Heroku's CLI, the line goes to stderr.
func (e *Env) action(msg string, f func() (string, error)) error {
	fmt.Fprintf(e.Err, "%s...", msg)
	status, err := f()
	if err != nil {
		fmt.Fprintln(e.Err, " !")
		return err
	}
	if status == "" {
		status = "done"
	}
	fmt.Fprintln(e.Err, " "+status)
	return nil
}

// warn prints a warning to stderr.
func (e *Env) warn(msg string) {
	for _, line := range strings.Split(msg, "\n") {
		fmt.Fprintln(e.Err, " ▸    "+line)
	}
}

// now is the clock, for relative times.
func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// escape makes a user-supplied name safe as one path segment.
func escape(s string) string { return url.PathEscape(s) }

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
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, " ▸    "+line)
	}
}

// Request describes one API call.
type Request struct {
	Method, Path string
	Body         any    // JSON-encoded when not nil
	Accept       string // the version variant, default "3"
	Range        string
	Partial      bool   // take only the first page, as Range asked
	Auth         string // Authorization header, instead of the bearer token
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
	if r.Auth != "" {
		req.Header.Set("Authorization", r.Auth)
	} else if e.Token != "" {
		req.Header.Set("Authorization", "Bearer "+e.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	client := e.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Skiff API at %s: %w", e.APIURL, err)
	}
	return resp, nil
}
