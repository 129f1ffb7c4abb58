package runtime

import (
	"os"
	"testing"
)

// skip skips a test that cannot run on this machine, except under
// scripts/test (SKIFF_TESTS_NO_SKIP set), which installs everything the
// tests need and runs as root: there a skip would hide a broken setup.
func skip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("SKIFF_TESTS_NO_SKIP") != "" {
		t.Fatal(why + " (SKIFF_TESTS_NO_SKIP is set: scripts/test must provide it)")
	}
	t.Skip(why)
}
