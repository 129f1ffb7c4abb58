package cli

import "testing"

func TestRollbackTarget(t *testing.T) {
	r := func(v int, eligible bool) release { return release{Version: v, EligibleForRollback: eligible} }
	tests := []struct {
		name string
		list []release // newest first, as the API returns them with order=desc
		want int       // 0: none
	}{
		{"previous release", []release{r(5, true), r(4, true), r(3, true)}, 4},
		{"skips ineligible", []release{r(5, true), r(4, false), r(3, true)}, 3},
		{"current ineligible", []release{r(5, false), r(4, true), r(3, true)}, 3},
		{"only one eligible", []release{r(2, true), r(1, false)}, 0},
		{"none", nil, 0},
	}
	for _, tt := range tests {
		got, ok := rollbackTarget(tt.list)
		if (tt.want == 0) == ok || (ok && got.Version != tt.want) {
			t.Errorf("%s: got v%d (%v), want v%d", tt.name, got.Version, ok, tt.want)
		}
	}
}

func TestReleaseVersion(t *testing.T) {
	for in, want := range map[string]string{"v12": "12", "V3": "3", "7": "7"} {
		if got, err := releaseVersion(in); err != nil || got != want {
			t.Errorf("releaseVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "v", "vx", "v0", "v-1", "12a"} {
		if got, err := releaseVersion(in); err == nil {
			t.Errorf("releaseVersion(%q) = %q, want an error", in, got)
		}
	}
}
