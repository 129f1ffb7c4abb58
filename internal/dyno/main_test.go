package dyno

import (
	"fmt"
	"os"
	"testing"

	"github.com/skiffhq/skiff/internal/hostlock"
)

// TestMain serialises this package's runs on the host: the container tests
// use fixed bridge names and subnets.
func TestMain(m *testing.M) {
	lock, err := hostlock.Acquire("dyno-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	lock.Release()
	os.Exit(code)
}
