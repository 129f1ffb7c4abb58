// Command skiff is both the Skiff server (`skiff server`) and its client
// (`skiff apps`, `skiff config:set`, … with Heroku's command names).
package main

import (
	"fmt"
	"os"

	"github.com/skiffhq/skiff/internal/cli"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "server" {
		if err := runServer(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "skiff server:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
