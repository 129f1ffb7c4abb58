package platform

import (
	"context"
	"errors"
	"testing"
)

// TestBootTimeoutVar: SKIFF_BOOT_TIMEOUT takes whole seconds from 1 to
// MaxBootTimeout; anything else is refused and changes nothing.
func TestBootTimeoutVar(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.app("booty")
	for _, tc := range []struct {
		value string
		ok    bool
		want  int // BootTimeout of the config afterwards
	}{
		{"120", true, 120},
		{" 90 ", true, 90},
		{"0", false, 90},
		{"601", false, 90},
		{"2m", false, 90},
		{"", false, 90},
		{"600", true, 600},
	} {
		v := tc.value
		cfg, _, err := f.p.UpdateConfig(ctx, f.admin, "booty", []ConfigChange{{Key: "A", Value: &v}, {Key: BootTimeoutVar, Value: &v}})
		var pe *Error
		switch {
		case tc.ok && err != nil:
			t.Errorf("%q: %v", tc.value, err)
		case !tc.ok && (!errors.As(err, &pe) || pe.Kind != KindInvalid):
			t.Errorf("%q: error %v, want an invalid-input error", tc.value, err)
		}
		if err != nil {
			if cfg, err = f.p.Config(ctx, f.admin, "booty"); err != nil {
				t.Fatal(err)
			}
			if _, ok := cfg["A"]; ok && cfg["A"] == v {
				t.Errorf("%q: the other change of the refused update was kept", tc.value)
			}
		}
		if got := BootTimeout(cfg); got != tc.want {
			t.Errorf("%q: boot timeout %d, want %d (config %v)", tc.value, got, tc.want, cfg)
		}
	}
	// Unsetting it goes back to the default.
	cfg, _, err := f.p.UpdateConfig(ctx, f.admin, "booty", []ConfigChange{{Key: BootTimeoutVar}})
	if err != nil || BootTimeout(cfg) != 0 {
		t.Errorf("unset: %v, %v", cfg, err)
	}
}
