package dyno

import (
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

// TestBootTimeoutPerApp: an app's SKIFF_BOOT_TIMEOUT (seconds; a second
// lasts a millisecond here) replaces the default boot timeout for its web
// dynos only.
func TestBootTimeoutPerApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.BootTimeout, c.Second = time.Hour, time.Millisecond })
	slow := e.app("slowboot", "nobind")
	other := e.app("otherboot", "nobind")
	e.config("slowboot", platform.BootTimeoutVar, "80")
	e.eventually("R10 after the app's own boot timeout", func() bool {
		d := e.m.Dynos(slow.ID)
		return len(d) == 1 && d[0].State == StateCrashed
	})
	// Crashed after the immediate restart: R10 twice.
	if n := e.logs.count("heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 80ms of launch"); n != 2 {
		t.Errorf("%d R10 lines naming the app's timeout, want 2", n)
	}
	if d := e.m.Dynos(other.ID); len(d) != 1 || d[0].State != StateStarting {
		t.Errorf("the other app's dyno: %s; want it still starting under the default timeout", states(d))
	}
}
