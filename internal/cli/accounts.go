package cli

import (
	"flag"
	"fmt"
)

func init() {
	register("accounts:create", command{usage: "accounts:create EMAIL", help: "create an account (admin only) and print its token", run: accountsCreate})
	register("auth:whoami", command{usage: "auth:whoami", help: "display the current account's email", run: whoami})
}

func accountsCreate(e *Env, args []string) error {
	fs := flag.NewFlagSet("accounts:create", flag.ContinueOnError)
	password := fs.String("password", "", "password for `heroku login -i` (optional: the token works as one)")
	if err := fs.Parse(reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("Usage: skiff accounts:create EMAIL [--password P]")
	}
	var out struct {
		Email       string `json:"email"`
		AccessToken struct {
			Token string `json:"token"`
		} `json:"access_token"`
	}
	if err := e.Do(Request{Method: "POST", Path: "/accounts", Body: map[string]string{"email": fs.Arg(0), "password": *password}}, &out); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "Created account %s\nToken: %s\n", out.Email, out.AccessToken.Token)
	return nil
}

func whoami(e *Env, args []string) error {
	var a struct{ Email string }
	if err := e.Do(Request{Method: "GET", Path: "/account"}, &a); err != nil {
		return err
	}
	fmt.Fprintln(e.Out, a.Email)
	return nil
}

// reorder moves flags before positional arguments, so that
// `skiff apps:create NAME --region us` parses as Heroku's CLI does.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
