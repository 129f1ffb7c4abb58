package platform

import (
	"context"
	"strings"
	"testing"
)

func TestBuildsAndStacks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const base = "sha256:" + "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	if _, err := f.p.PutStack(ctx, f.admin, "Bad Name", base); err == nil {
		t.Error("a stack name with spaces was accepted")
	}
	if _, err := f.p.PutStack(ctx, f.admin, "busybox:1", base); err != nil {
		t.Fatal(err)
	}
	if id, err := f.p.StackImage(ctx, "busybox:1"); err != nil || id != base {
		t.Errorf("StackImage = %q, %v", id, err)
	}
	if _, err := f.p.StackImage(ctx, "nothere"); err == nil || !strings.Contains(err.Error(), "skiff stack:import nothere") {
		t.Errorf("unknown stack: %v", err)
	}
	// The image garbage collector keeps stacks: builds start from them.
	keep, err := f.p.ReleasedImages(ctx, 0, nil)
	if err != nil || !keep[base] {
		t.Errorf("ReleasedImages = %v, %v; want the stack's image kept", keep, err)
	}

	app, err := f.p.CreateApp(ctx, f.admin, AppSpec{Name: "built"})
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := f.p.CreateBuild(ctx, f.admin, "built", BuildSource{Version: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	img := "sha256:" + strings.Repeat("cd", 32)
	rel, err := f.p.FinishBuild(ctx, app.ID, b.ID, BuildOutcome{Processes: map[string]Process{"web": {Image: img}}})
	if err != nil || rel.Description != "Deploy 01234567" || rel.Processes["web"].Image != img {
		t.Fatalf("FinishBuild = %+v, %v", rel, err)
	}
	_, b2, _ := f.p.CreateBuild(ctx, f.admin, "built", BuildSource{})
	if rel, err := f.p.FinishBuild(ctx, app.ID, b2.ID, BuildOutcome{Err: context.Canceled}); err != nil || rel != nil {
		t.Errorf("a failed build: %+v, %v", rel, err)
	}
	if _, got, _ := f.p.Build(ctx, f.admin, "built", b2.ID); got.Status != "failed" || got.ReleaseID != "" {
		t.Errorf("failed build = %+v", got)
	}
}
