package cli

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func init() {
	register("auth:whoami", command{usage: "auth:whoami", help: "display the current logged in user", run: whoami}, "whoami")
	register("auth:token", command{usage: "auth:token", help: "display the API token the client uses", run: authToken})
	register("login", command{
		usage: "login [--api-url URL]", help: "log in with your email and password (or an API token as the password)",
		flags: []flagDef{
			{Long: "interactive", Short: 'i', Usage: "enter credentials on the terminal (the only way; accepted for compatibility)"},
			{Long: "expires-in", Short: 'e', Value: true, Usage: "seconds until the new token expires (default: one year; 0: never)"},
		},
		noAuth: true, run: login,
	}, "auth:login")
	register("logout", command{usage: "logout", help: "revoke the saved token and forget it", noAuth: true, run: logout}, "auth:logout")
}

func whoami(e *Env, in *Input) error {
	var a struct{ Email string }
	if err := e.Do(Request{Method: "GET", Path: "/account"}, &a); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			return errors.New("not logged in")
		}
		return err
	}
	fmt.Fprintln(e.Out, a.Email)
	return nil
}

// authorization is the part of an OAuth authorization the client reads.
type authorization struct {
	ID          string `json:"id"`
	AccessToken struct {
		ExpiresIn *int    `json:"expires_in"`
		Token     *string `json:"token"`
	} `json:"access_token"`
	User struct {
		Email string `json:"email"`
	} `json:"user"`
}

func authToken(e *Env, in *Input) error {
	var a authorization
	if err := e.Do(Request{Method: "GET", Path: "/oauth/authorizations/~"}, &a); err != nil {
		e.warn(err.Error())
	} else if a.AccessToken.ExpiresIn != nil {
		at := e.now().Add(time.Duration(*a.AccessToken.ExpiresIn) * time.Second)
		e.warn("token will expire " + at.Local().Format("2006-01-02 15:04 MST") +
			"\nTo get a token that does not expire, run: skiff login --expires-in 0")
	}
	fmt.Fprintln(e.Out, e.Token)
	return nil
}

// defaultLoginTTL is how long a token from `skiff login` lives, as the
// tokens Heroku's CLI gets.
const defaultLoginTTL = 365 * 24 * 60 * 60

func login(e *Env, in *Input) error {
	if err := e.resolveURL(); err != nil {
		return err
	}
	ttl := defaultLoginTTL
	if v := in.String("expires-in"); v != "" {
		var err error
		if ttl, err = strconv.Atoi(v); err != nil || ttl < 0 {
			return flagErrorf("--expires-in %q: want a number of seconds", v)
		}
	}
	r := bufio.NewReader(e.In)
	fmt.Fprintln(e.Err, "Enter your login credentials for "+e.APIURL)
	fmt.Fprint(e.Err, "Email: ")
	email, err := readLine(r)
	if err != nil {
		return err
	}
	echoed := false
	if f, ok := e.In.(*os.File); ok && isTerminal(f) {
		echoed = true // the terminal showed the answer and its newline
	}
	if !echoed {
		fmt.Fprintln(e.Err)
	}
	if email == "" {
		return errors.New("Email is required.")
	}
	fmt.Fprint(e.Err, "Password: ")
	password, err := readSecret(r, e.In, e.Err)
	if err != nil {
		return err
	}
	if !echoed {
		fmt.Fprintln(e.Err)
	}
	host, _ := os.Hostname()
	body := map[string]any{"description": "Skiff CLI login from " + host, "scope": []string{"global"}}
	if ttl > 0 {
		body["expires_in"] = ttl
	}
	var a authorization
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+password))
	if err := e.Do(Request{Method: "POST", Path: "/oauth/authorizations", Body: body, Auth: basic}, &a); err != nil {
		return err
	}
	if a.AccessToken.Token == nil {
		return errors.New("the server answered without a token")
	}
	if a.User.Email != "" {
		email = a.User.Email
	}
	if _, err := WriteLogin(Login{APIURL: e.APIURL, Email: email, Token: *a.AccessToken.Token}); err != nil {
		return fmt.Errorf("save the login: %w", err)
	}
	fmt.Fprintln(e.Out, "Logged in as "+email)
	return nil
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no input: expected the email and the password on standard input")
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// readSecret reads a line without echoing it when in is a terminal.
func readSecret(r *bufio.Reader, in io.Reader, errw io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		if stty(f, "-echo") == nil {
			defer func() {
				stty(f, "echo")
				fmt.Fprintln(errw)
			}()
		}
	}
	return readLine(r)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func stty(tty *os.File, arg string) error {
	cmd := exec.Command("stty", arg)
	cmd.Stdin = tty
	return cmd.Run()
}

func logout(e *Env, in *Input) error {
	l, err := ReadLogin()
	if err != nil {
		return err
	}
	return e.action("Logging out", func() (string, error) {
		if l.Token == "" {
			return "", nil
		}
		c := *e
		c.APIURL = strings.TrimRight(firstNonEmpty(l.APIURL, e.APIURL, os.Getenv("SKIFF_API_URL")), "/")
		c.Token = l.Token
		if c.APIURL != "" {
			var a authorization
			err := c.Do(Request{Method: "GET", Path: "/oauth/authorizations/~"}, &a)
			if err == nil {
				err = c.Do(Request{Method: "DELETE", Path: "/oauth/authorizations/" + escape(a.ID)}, nil)
			}
			var ae *APIError
			if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusUnauthorized) {
				return "", err // a token the server no longer knows is logged out already
			}
		}
		_, err := WriteLogin(Login{APIURL: l.APIURL})
		return "", err
	})
}
