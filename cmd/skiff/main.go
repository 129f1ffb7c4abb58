// Command skiff is both the Skiff server (`skiff server`) and its client
// (`skiff apps`, `skiff config:set`, … with Heroku's command names).
package main

import (
	"fmt"
	"os"

	"github.com/skiffhq/skiff/internal/cli"
	"github.com/skiffhq/skiff/internal/pid1"
	"github.com/skiffhq/skiff/internal/runtime"
)

func main() {
	// Inside a dyno, this binary is the init: see package pid1.
	if len(os.Args) > 2 && os.Args[1] == runtime.InitArg && os.Args[2] == "--" {
		os.Exit(pid1.Run(os.Args[3:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "git-hook" { // builds: git's pre-receive hook
		os.Exit(runGitHook())
	}
	if len(os.Args) > 1 && os.Args[1] == "server" {
		if err := runServer(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "skiff server:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "router" {
		if err := runRouter(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "skiff router:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
