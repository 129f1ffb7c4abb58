package platform

import (
	"strconv"
	"strings"
)

// BootTimeoutVar is the config var that sets an app's boot timeout: the
// seconds a web dyno has to bind $PORT before R10 (Heroku's default 60,
// which Heroku raises per app on request). A config var rather than an
// API field, so that the official heroku CLI sets it (`heroku config:set
// SKIFF_BOOT_TIMEOUT=120`) and it travels with releases and rollbacks.
const BootTimeoutVar = "SKIFF_BOOT_TIMEOUT"

// MaxBootTimeout bounds BootTimeoutVar, in seconds.
const MaxBootTimeout = 600

// BootTimeout returns the app's boot timeout in seconds from its config
// vars, or 0 when it sets none (or an invalid one, which UpdateConfig
// refuses anyway).
func BootTimeout(config map[string]string) int {
	v, ok := config[BootTimeoutVar]
	if !ok {
		return 0
	}
	n, err := parseBootTimeout(v)
	if err != nil {
		return 0
	}
	return n
}

func parseBootTimeout(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > MaxBootTimeout {
		return 0, errorf(KindInvalid, "Invalid %s %q: want a whole number of seconds from 1 to %d.", BootTimeoutVar, v, MaxBootTimeout)
	}
	return n, nil
}

// checkConfigValue refuses values Skiff itself reads and cannot use.
func checkConfigValue(c ConfigChange) error {
	if c.Key == BootTimeoutVar && c.Value != nil {
		_, err := parseBootTimeout(*c.Value)
		return err
	}
	return nil
}
