// Command init is a dyno init for the runtime's tests: the skiff binary's
// init mode without the rest of skiff.
package main

import (
	"os"

	"github.com/skiffhq/skiff/internal/pid1"
)

func main() {
	if len(os.Args) < 3 || os.Args[2] != "--" {
		os.Exit(2)
	}
	os.Exit(pid1.Run(os.Args[3:]))
}
