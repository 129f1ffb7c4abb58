package router

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs every test twice: with the event loops serving plain
// HTTP/1.1 (the default on Linux), then with a goroutine per connection.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		fmt.Println("--- again without event loops")
		loopsByDefault = false
		code = m.Run()
	}
	os.Exit(code)
}
