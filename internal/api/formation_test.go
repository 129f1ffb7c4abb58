package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/platform"
)

func TestDockerRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "docker")
	e.drain()
	img := digest("web-and-worker")
	body := map[string]any{"updates": []map[string]any{
		{"type": "web", "docker_image": img},
		{"type": "worker", "docker_image": img},
		{"type": "clock", "docker_image": img},
	}}
	r := e.must(http.StatusOK, "PATCH", "/apps/docker/formation", e.admin.Token, body, "Accept", acceptDocker)
	out := decodeAs[[]formationJSON](t, r)
	if len(out) != 3 {
		t.Errorf("PATCH answered %d entries", len(out))
	}
	rels := e.releases(e.admin.Token, "docker")
	last := rels[len(rels)-1]
	want := "Deploy " + strings.TrimPrefix(img, "sha256:")[:8]
	if last.Version != 3 || last.Description != want || !last.Current {
		t.Errorf("deploy release = %+v, want v3 %q", last, want)
	}
	if len(last.ProcessTypes) != 3 || len(last.Artifacts) != 3 || last.Artifacts[0].Type != "oci-image" || last.Artifacts[0].ID != img {
		t.Errorf("process types %+v, artifacts %+v", last.ProcessTypes, last.Artifacts)
	}
	fs := e.formation(e.admin.Token, "docker")
	for typ, q := range map[string]int{"web": 1, "worker": 0, "clock": 0} {
		f, ok := fs[typ]
		if !ok || f.Quantity != q || f.Size != "Standard-1X" || f.DynoSize.Name != "Standard-1X" || f.App.Name != "docker" {
			t.Errorf("formation %s = %+v (present %v), want %d Standard-1X", typ, f, ok, q)
		}
	}
	audit := e.audit()
	for _, w := range []string{want + " by user " + adminEmail, "Release v3 created by user " + adminEmail} {
		if !hasLine(audit, w) {
			t.Errorf("audit %q lacks %q", audit, w)
		}
	}

	// A redeploy keeps the scaled quantities and sizes.
	e.must(http.StatusOK, "PATCH", "/apps/docker/formation", e.admin.Token, `{"updates": [{"type": "web", "quantity": 3, "size": "Standard-2X"}]}`)
	img2 := digest("second")
	e.must(http.StatusOK, "PATCH", "/apps/docker/formation", e.admin.Token,
		map[string]any{"updates": []map[string]any{{"type": "web", "docker_image": img2}}}, "Accept", acceptDocker)
	fs = e.formation(e.admin.Token, "docker")
	if fs["web"].Quantity != 3 || fs["web"].Size != "Standard-2X" {
		t.Errorf("redeploy reset web to %+v", fs["web"])
	}
	rels = e.releases(e.admin.Token, "docker")
	procs := map[string]string{}
	for _, p := range rels[len(rels)-1].ProcessTypes {
		procs[p.Type] = p.Image
	}
	if procs["web"] != img2 || procs["worker"] != img || procs["clock"] != img {
		t.Errorf("after a web-only deploy: %v", procs)
	}

	before := e.dump()
	for _, tc := range []struct {
		name string
		body string
	}{
		{"short digest", `{"updates": [{"type": "web", "docker_image": "sha256:abc"}]}`},
		{"no algorithm", `{"updates": [{"type": "web", "docker_image": "` + strings.Repeat("a", 64) + `"}]}`},
		{"upper case hex", `{"updates": [{"type": "web", "docker_image": "sha256:` + strings.Repeat("A", 64) + `"}]}`},
		{"image reference", `{"updates": [{"type": "web", "docker_image": "registry.example.com/app:latest"}]}`},
		{"bad process type", `{"updates": [{"type": "we b", "docker_image": "` + img + `"}]}`},
		{"one bad among good", `{"updates": [{"type": "web", "docker_image": "` + img + `"}, {"type": "worker", "docker_image": "nope"}]}`},
		{"missing type", `{"updates": [{"docker_image": "` + img + `"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do("PATCH", "/apps/docker/formation", e.admin.Token, tc.body, "Accept", acceptDocker), http.StatusUnprocessableEntity, "invalid_params")
		})
	}
	e.unchanged(before)
}

// TestDockerReleaseWithInvalidScaleChangesNothing: a batch that deploys an
// image and scales beyond the limits must fail as a whole.
func TestDockerReleaseWithInvalidScaleChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "atomic")
	e.deploy(e.admin.Token, "atomic", "web")
	before := e.dump()
	body := map[string]any{"updates": []map[string]any{{"type": "web", "docker_image": digest("atomic-2"), "quantity": 500}}}
	checkError(t, e.do("PATCH", "/apps/atomic/formation", e.admin.Token, body, "Accept", acceptDocker), http.StatusUnprocessableEntity, "invalid_params")
	e.unchanged(before)
}

func TestScaleFormation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "scale")
	e.deploy(e.admin.Token, "scale", "web", "worker")
	rels := len(e.releases(e.admin.Token, "scale"))
	e.drain()

	steps := []struct {
		name   string
		method string
		path   string
		body   string
		web    int
		size   string
		worker int
		audit  string
	}{
		{"absolute string with size", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "web", "quantity": "2", "size": "Standard-1X"}]}`,
			2, "Standard-1X", 0, "Scaled to web@2:Standard-1X by user " + adminEmail},
		{"relative +2", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "web", "quantity": "+2"}]}`,
			4, "Standard-1X", 0, "Scaled to web@4:Standard-1X by user " + adminEmail},
		{"relative -1", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "web", "quantity": "-1"}]}`,
			3, "Standard-1X", 0, "Scaled to web@3:Standard-1X by user " + adminEmail},
		{"number", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "web", "quantity": 5}]}`,
			5, "Standard-1X", 0, "Scaled to web@5:Standard-1X by user " + adminEmail},
		{"size case-insensitive, keeps quantity", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "web", "size": "standard-2x"}]}`,
			5, "Standard-2X", 0, "Scaled to web@5:Standard-2X by user " + adminEmail},
		{"several types at once", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "web", "quantity": "1"}, {"type": "worker", "quantity": "2", "size": "STANDARD-1X"}]}`,
			1, "Standard-2X", 2, "Scaled to web@1:Standard-2X worker@2:Standard-1X by user " + adminEmail},
		{"relative below zero stops at zero", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "worker", "quantity": "-5"}]}`,
			1, "Standard-2X", 0, "Scaled to worker@0:Standard-1X by user " + adminEmail},
		{"single type, number", "PATCH", "/apps/scale/formation/web", `{"quantity": 2}`,
			2, "Standard-2X", 0, "Scaled to web@2:Standard-2X by user " + adminEmail},
		{"single type, relative string", "PATCH", "/apps/scale/formation/web", `{"quantity": "+1"}`,
			3, "Standard-2X", 0, "Scaled to web@3:Standard-2X by user " + adminEmail},
		{"single type, dyno_size object", "PATCH", "/apps/scale/formation/web", `{"dyno_size": {"name": "performance-m"}}`,
			3, "Performance-M", 0, "Scaled to web@3:Performance-M by user " + adminEmail},
		{"single type, dyno_size by id", "PATCH", "/apps/scale/formation/web", `{"dyno_size": {"id": "` + platform.Sizes[2].ID + `"}}`,
			3, "Standard-1X", 0, "Scaled to web@3:Standard-1X by user " + adminEmail},
		{"batch, dyno_size string", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "web", "dyno_size": "standard-2X"}]}`,
			3, "Standard-2X", 0, "Scaled to web@3:Standard-2X by user " + adminEmail},
		{"to zero", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "web", "quantity": 0}]}`,
			0, "Standard-2X", 0, "Scaled to web@0:Standard-2X by user " + adminEmail},
		{"the per-app limit exactly", "PATCH", "/apps/scale/formation", `{"updates": [{"type": "web", "quantity": 60}, {"type": "worker", "quantity": "40"}]}`,
			60, "Standard-2X", 40, "Scaled to web@60:Standard-2X worker@40:Standard-1X by user " + adminEmail},
	}
	for _, s := range steps {
		r := e.must(http.StatusOK, s.method, s.path, e.admin.Token, s.body)
		if strings.HasSuffix(s.path, "/formation") {
			for _, f := range decodeAs[[]formationJSON](t, r) {
				if !strings.Contains(s.body, `"`+f.Type+`"`) {
					t.Errorf("%s: the answer includes untouched type %s", s.name, f.Type)
				}
			}
		} else if f := decodeAs[formationJSON](t, r); f.Type != "web" || f.Quantity != s.web || f.Size != s.size {
			t.Errorf("%s: answered %+v", s.name, f)
		}
		fs := e.formation(e.admin.Token, "scale")
		if fs["web"].Quantity != s.web || fs["web"].Size != s.size || fs["worker"].Quantity != s.worker {
			t.Errorf("%s: web=%d:%s worker=%d, want web=%d:%s worker=%d", s.name,
				fs["web"].Quantity, fs["web"].Size, fs["worker"].Quantity, s.web, s.size, s.worker)
		}
		if got := e.audit(); len(got) != 1 || got[0] != s.audit {
			t.Errorf("%s: audit = %q, want %q", s.name, got, s.audit)
		}
	}
	if n := len(e.releases(e.admin.Token, "scale")); n != rels {
		t.Errorf("scaling created %d releases", n-rels)
	}
	// GET one type, by name and by id.
	fs := e.formation(e.admin.Token, "scale")
	for _, ident := range []string{"web", fs["web"].ID} {
		f := decodeAs[formationJSON](t, e.must(http.StatusOK, "GET", "/apps/scale/formation/"+ident, e.admin.Token, nil))
		if f.ID != fs["web"].ID || f.Quantity != 60 {
			t.Errorf("GET formation/%s = %+v", ident, f)
		}
	}
	checkError(t, e.do("GET", "/apps/scale/formation/nope", e.admin.Token, nil), http.StatusNotFound, "not_found")
}

func TestScaleFormationErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "scaleerr")
	e.deploy(e.admin.Token, "scaleerr", "web", "worker", "clock")
	e.must(http.StatusOK, "PATCH", "/apps/scaleerr/formation", e.admin.Token, `{"updates": [{"type": "web", "quantity": 2}]}`)
	e.drain()
	before := e.dump()
	batch := func(updates string) string { return `{"updates": [` + updates + `]}` }
	for _, tc := range []struct {
		name, path, body string
		status           int
		id               string
	}{
		{"unknown size", "", batch(`{"type": "web", "size": "Huge-1X"}`), 422, "invalid_params"},
		{"unknown dyno_size", "", batch(`{"type": "web", "dyno_size": {"name": "Mega"}}`), 422, "invalid_params"},
		{"Private-S", "", batch(`{"type": "web", "size": "Private-S"}`), 422, "invalid_params"},
		{"private-m lower case", "", batch(`{"type": "web", "size": "private-m"}`), 422, "invalid_params"},
		{"Private-L single", "/web", `{"size": "Private-L"}`, 422, "invalid_params"},
		{"Shield size", "", batch(`{"type": "web", "size": "Shield-M"}`), 422, "invalid_params"},
		{"negative absolute number", "", batch(`{"type": "web", "quantity": -1}`), 422, "invalid_params"},
		{"negative absolute number single", "/web", `{"quantity": -3}`, 422, "invalid_params"},
		{"non-numeric string", "", batch(`{"type": "web", "quantity": "lots"}`), 422, "invalid_params"},
		{"empty string", "", batch(`{"type": "web", "quantity": ""}`), 422, "invalid_params"},
		{"fraction", "", batch(`{"type": "web", "quantity": 1.5}`), 422, "invalid_params"},
		{"fraction string", "", batch(`{"type": "web", "quantity": "1.5"}`), 422, "invalid_params"},
		{"double sign", "", batch(`{"type": "web", "quantity": "++1"}`), 422, "invalid_params"},
		{"bool", "", batch(`{"type": "web", "quantity": true}`), 422, "invalid_params"},
		{"above the app limit", "", batch(`{"type": "web", "quantity": 101}`), 422, "invalid_params"},
		{"above the app limit in sum", "", batch(`{"type": "web", "quantity": 60}, {"type": "worker", "quantity": 41}`), 422, "invalid_params"},
		{"above the app limit relative", "", batch(`{"type": "web", "quantity": "+99"}`), 422, "invalid_params"},
		{"huge", "", batch(`{"type": "web", "quantity": "99999999999999999999"}`), 422, "invalid_params"},
		{"Basic above 1", "", batch(`{"type": "web", "quantity": 2, "size": "Basic"}, {"type": "worker", "size": "Basic"}, {"type": "clock", "size": "Basic"}`), 422, "invalid_params"},
		{"Eco above 1 per type", "", batch(`{"type": "web", "quantity": 2, "size": "eco"}, {"type": "worker", "size": "eco"}, {"type": "clock", "size": "eco"}`), 422, "invalid_params"},
		{"Eco above 2 per app", "", batch(`{"type": "web", "quantity": 1, "size": "Eco"}, {"type": "worker", "quantity": 1, "size": "Eco"}, {"type": "clock", "quantity": 1, "size": "Eco"}`), 422, "invalid_params"},
		{"Basic mixed with Standard", "", batch(`{"type": "web", "quantity": 1, "size": "Basic"}`), 422, "invalid_params"},
		{"Eco mixed with Standard", "", batch(`{"type": "worker", "quantity": 1, "size": "Eco"}`), 422, "invalid_params"},
		{"Eco mixed with Basic", "", batch(`{"type": "web", "quantity": 1, "size": "Eco"}, {"type": "worker", "size": "Basic"}, {"type": "clock", "size": "Basic"}`), 422, "invalid_params"},
		{"Performance above 10 per type", "", batch(`{"type": "web", "quantity": 11, "size": "Performance-M"}`), 422, "invalid_params"},
		{"unknown type", "", batch(`{"type": "nope", "quantity": 1}`), 404, "not_found"},
		{"unknown type after a valid one", "", batch(`{"type": "web", "quantity": 5}, {"type": "nope", "quantity": 1}`), 404, "not_found"},
		{"unknown type single", "/nope", `{"quantity": 1}`, 404, "not_found"},
		{"type is case-sensitive", "/WEB", `{"quantity": 1}`, 404, "not_found"},
		{"no updates", "", `{"updates": []}`, 422, "invalid_params"},
		{"missing updates", "", `{}`, 422, "invalid_params"},
		{"update without type", "", batch(`{"quantity": 1}`), 422, "invalid_params"},
		{"malformed", "", `{"updates": [`, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do("PATCH", "/apps/scaleerr/formation"+tc.path, e.admin.Token, tc.body), tc.status, tc.id)
		})
	}
	e.unchanged(before)
	if got := e.audit(); len(got) != 0 {
		t.Errorf("refused scaling published %q", got)
	}

	// Within the rules, Basic and Eco work when every type uses them.
	e.must(http.StatusOK, "PATCH", "/apps/scaleerr/formation", e.admin.Token,
		batch(`{"type": "web", "quantity": 1, "size": "Basic"}, {"type": "worker", "quantity": 1, "size": "basic"}, {"type": "clock", "size": "Basic"}`))
	e.must(http.StatusOK, "PATCH", "/apps/scaleerr/formation", e.admin.Token,
		batch(`{"type": "web", "size": "Eco"}, {"type": "worker", "size": "Eco"}, {"type": "clock", "quantity": 0, "size": "Eco"}`))
	e.must(http.StatusOK, "PATCH", "/apps/scaleerr/formation", e.admin.Token,
		batch(`{"type": "web", "quantity": 10, "size": "Performance-L"}, {"type": "worker", "quantity": 0, "size": "Standard-1X"}, {"type": "clock", "size": "Standard-2X"}`))
}

func TestScaleLimitIsConfigurable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPlatform(platform.WithLimits(platform.Limits{MaxDynos: 3})))
	e.createApp(e.admin.Token, "small")
	e.deploy(e.admin.Token, "small", "web")
	e.must(http.StatusOK, "PATCH", "/apps/small/formation/web", e.admin.Token, `{"quantity": 3}`)
	before := e.dump()
	checkError(t, e.do("PATCH", "/apps/small/formation/web", e.admin.Token, `{"quantity": "+1"}`), http.StatusUnprocessableEntity, "invalid_params")
	e.unchanged(before)
}

func TestFormationOfAppWithoutProcessTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "empty")
	if body := strings.TrimSpace(string(e.must(http.StatusOK, "GET", "/apps/empty/formation", e.admin.Token, nil).Body)); body != "[]" {
		t.Errorf("formation = %s", body)
	}
	before := e.dump()
	checkError(t, e.do("PATCH", "/apps/empty/formation", e.admin.Token, `{"updates": [{"type": "web", "quantity": 1}]}`), http.StatusNotFound, "not_found")
	checkError(t, e.do("GET", "/apps/empty/formation/web", e.admin.Token, nil), http.StatusNotFound, "not_found")
	e.unchanged(before)
}
