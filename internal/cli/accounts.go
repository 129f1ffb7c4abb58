package cli

import (
	"fmt"
)

func init() {
	register("accounts:create", command{
		usage: "accounts:create EMAIL [--password P]", help: "create an account (admin only) and print its token",
		flags:   []flagDef{{Long: "password", Short: 'p', Value: true, Usage: "password for `login` (optional: the token works as one)"}},
		minArgs: 1, maxArgs: 1, run: accountsCreate,
	})
}

func accountsCreate(e *Env, in *Input) error {
	var out struct {
		Email       string `json:"email"`
		AccessToken struct {
			Token string `json:"token"`
		} `json:"access_token"`
	}
	body := map[string]string{"email": in.Args[0]}
	if p := in.String("password"); p != "" {
		body["password"] = p
	}
	if err := e.Do(Request{Method: "POST", Path: "/accounts", Body: body}, &out); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "Created account %s\nToken: %s\n", out.Email, out.AccessToken.Token)
	return nil
}
