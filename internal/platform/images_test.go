package platform

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestReleasedImages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	app, err := f.p.CreateApp(ctx, f.admin, AppSpec{Name: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	img := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	for _, c := range []string{"1", "2", "3"} { // v3, v4, v5
		if _, err := f.p.DeployImages(ctx, f.admin, "kept", []ImageUpdate{{Type: "web", Image: img(c)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.p.Rollback(ctx, f.admin, "kept", "3"); err != nil { // v6 runs image 1
		t.Fatal(err)
	}
	for _, tc := range []struct {
		keep    int
		running []int
		want    []string
	}{
		{0, nil, []string{img("1"), img("2"), img("3")}},
		{1, nil, []string{img("1")}},
		{2, nil, []string{img("1"), img("3")}},
		{1, []int{4}, []string{img("1"), img("2")}}, // dynos of v4 still run
	} {
		running := func(appID string) []int {
			if appID != app.ID {
				t.Errorf("running asked for %s", appID)
			}
			return tc.running
		}
		got, err := f.p.ReleasedImages(ctx, tc.keep, running)
		if err != nil {
			t.Fatal(err)
		}
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, tc.want) {
			t.Errorf("keep %d running %v: %v, want %v", tc.keep, tc.running, keys, tc.want)
		}
	}
}
