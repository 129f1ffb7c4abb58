package platform

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/store"
)

// Release is a numbered version of an app.
type Release = store.Release

// Process is what a release runs for one process type.
type Process = store.Process

// release records a new succeeded release of app and brings the formation
// up to date with its process types. It must run inside the transaction
// that made the change the release describes.
func (p *Platform) release(tx *store.Tx, ev *[]Event, app *App, actor *Account, desc string, config map[string]string, procs map[string]Process) (*Release, error) {
	v, err := tx.NextVersion(app.ID)
	if err != nil {
		return nil, err
	}
	now := p.now()
	// A release with a release phase is pending until its release command
	// has run: it is not current, and the dynos keep running the old one.
	status := "succeeded"
	if _, ok := procs[ReleasePhase]; ok {
		status = "pending"
	}
	r := &Release{ID: newID(), AppID: app.ID, Version: v, Description: desc, Status: status,
		UserID: actor.ID, UserEmail: actor.Email, Config: config, Processes: procs, CreatedAt: now, UpdatedAt: now}
	if err := tx.CreateRelease(r); err != nil {
		return nil, err
	}
	if err := p.syncFormation(tx, app, procs); err != nil {
		return nil, err
	}
	app.LastVersion = v
	*ev = append(*ev, Event{Kind: EventAudit, AppID: app.ID, AppName: app.Name, Message: desc + " by user " + actor.Email, Time: now})
	if status == "pending" {
		*ev = append(*ev, Event{Kind: EventRelease, AppID: app.ID, AppName: app.Name, Message: fmt.Sprintf("Running release v%d commands by user %s", v, actor.Email), Time: now})
	} else {
		*ev = append(*ev, Event{Kind: EventRelease, AppID: app.ID, AppName: app.Name, Message: fmt.Sprintf("Release v%d created by user %s", v, actor.Email), Time: now})
	}
	return r, nil
}

// ReleasePhase is the process type whose command runs before a release
// becomes current (Heroku's release phase).
const ReleasePhase = "release"

// CompleteRelease ends a pending release's release phase: it becomes
// succeeded (and so current, and the dynos restart on it) or failed (and
// the previous release keeps running). A release that is no longer pending
// is left alone.
func (p *Platform) CompleteRelease(ctx context.Context, appID, releaseID string, ok bool) error {
	return p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app, err := tx.AppByID(appID)
		if errors.Is(err, store.ErrNotFound) {
			return nil // destroyed meanwhile
		}
		if err != nil {
			return err
		}
		r, err := tx.ReleaseByID(appID, releaseID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil || r.Status != "pending" {
			return err
		}
		now := p.now()
		msg := fmt.Sprintf("Release v%d created by user %s", r.Version, r.UserEmail)
		status := "succeeded"
		if !ok {
			status, msg = "failed", fmt.Sprintf("Release v%d command failed by user %s", r.Version, r.UserEmail)
		}
		if err := tx.SetReleaseStatus(appID, releaseID, status, now); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventRelease, AppID: appID, AppName: app.Name, Message: msg, Time: now})
		return nil
	})
}

// current returns the app's current release; every app has one from birth.
func current(tx *store.Tx, app *App) (*Release, error) {
	r, err := tx.CurrentRelease(app.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("app %s has no current release", app.Name)
	}
	return r, err
}

// ---- config vars ----

// configKey is the Platform API's rule for config var names.
var configKey = regexp.MustCompile(`^\w+$`)

// MaxConfigSize bounds the total size of an app's config var keys and
// values, as Heroku does.
const MaxConfigSize = 32 * 1024

// ConfigChange sets Key to *Value, or removes it when Value is nil.
type ConfigChange struct {
	Key   string
	Value *string
}

// Config returns the app's current config vars.
func (p *Platform) Config(ctx context.Context, actor *Account, ident string) (map[string]string, error) {
	var cfg map[string]string
	err := p.read(ctx, func(tx *store.Tx) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		r, err := current(tx, app)
		if err != nil {
			return err
		}
		cfg = r.Config
		return nil
	})
	return cfg, err
}

// UpdateConfig applies changes in order. If the config map changes, one new
// release records it, in the same transaction; otherwise nothing is
// written. It returns the resulting config.
func (p *Platform) UpdateConfig(ctx context.Context, actor *Account, ident string, changes []ConfigChange) (map[string]string, *Release, error) {
	for _, c := range changes {
		if !configKey.MatchString(c.Key) {
			return nil, nil, errorf(KindInvalid, "Invalid config var name %q: names may contain only letters, digits and underscores.", c.Key)
		}
		if err := checkConfigValue(c); err != nil {
			return nil, nil, err
		}
	}
	var cfg map[string]string
	var rel *Release
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		cur, err := current(tx, app)
		if err != nil {
			return err
		}
		cfg = maps.Clone(cur.Config)
		var set, removed []string
		for _, c := range changes {
			old, had := cfg[c.Key]
			switch {
			case c.Value == nil && had:
				delete(cfg, c.Key)
				removed = appendOnce(removed, c.Key)
				set = slices.DeleteFunc(set, func(k string) bool { return k == c.Key })
			case c.Value != nil && (!had || old != *c.Value):
				cfg[c.Key] = *c.Value
				set = appendOnce(set, c.Key)
				removed = slices.DeleteFunc(removed, func(k string) bool { return k == c.Key })
			}
		}
		if maps.Equal(cfg, cur.Config) { // nothing changed in the end, e.g. {"A": "1", "A": null} with no A
			return nil
		}
		if n := configSize(cfg); n > MaxConfigSize {
			return errorf(KindInvalid, "Config vars are too large: %d bytes in all, the limit is %d bytes (32 KB).", n, MaxConfigSize)
		}
		rel, err = p.release(tx, ev, app, actor, configDescription(set, removed), cfg, cur.Processes)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return cfg, rel, nil
}

func appendOnce(s []string, k string) []string {
	if slices.Contains(s, k) {
		return s
	}
	return append(s, k)
}

func configSize(cfg map[string]string) int {
	n := 0
	for k, v := range cfg {
		n += len(k) + len(v)
	}
	return n
}

// configDescription words a config release as Heroku does:
// "Set A, B config vars", "Remove A config vars".
func configDescription(set, removed []string) string {
	var parts []string
	if len(set) > 0 {
		parts = append(parts, "Set "+strings.Join(set, ", ")+" config vars")
	}
	if len(removed) > 0 {
		parts = append(parts, "Remove "+strings.Join(removed, ", ")+" config vars")
	}
	return strings.Join(parts, " and ")
}

// ---- releases ----

// ReleaseList is a page of releases and which of them is current.
type ReleaseList struct {
	App       *App
	Releases  []*Release
	More      bool
	CurrentID string
}

// Releases lists an app's releases one page at a time.
func (p *Platform) Releases(ctx context.Context, actor *Account, ident string, page store.Page) (*ReleaseList, error) {
	l := &ReleaseList{}
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		if l.App, err = access(tx, actor, ident); err != nil {
			return err
		}
		if l.Releases, l.More, err = tx.Releases(l.App.ID, page); err != nil {
			return err
		}
		cur, err := current(tx, l.App)
		if err != nil {
			return err
		}
		l.CurrentID = cur.ID
		return nil
	})
	return l, err
}

// Release returns one release by id or version ("7" or "v7"), and whether
// it is current.
func (p *Platform) Release(ctx context.Context, actor *Account, ident, release string) (*App, *Release, bool, error) {
	var app *App
	var r *Release
	var isCurrent bool
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		if r, err = findRelease(tx, app, release); err != nil {
			return err
		}
		cur, err := current(tx, app)
		if err != nil {
			return err
		}
		isCurrent = cur.ID == r.ID
		return nil
	})
	return app, r, isCurrent, err
}

func findRelease(tx *store.Tx, app *App, ident string) (*Release, error) {
	var r *Release
	var err error
	if uuid.Validate(ident) == nil {
		r, err = tx.ReleaseByID(app.ID, ident)
	} else if v, convErr := strconv.Atoi(strings.TrimPrefix(ident, "v")); convErr == nil {
		r, err = tx.ReleaseByVersion(app.ID, v)
	} else {
		return nil, errorf(KindNotFound, "Couldn't find that release.")
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(KindNotFound, "Couldn't find that release.")
	}
	return r, err
}

// Eligible reports whether r can be rolled back to.
func Eligible(r *Release) bool { return r.Status == "succeeded" }

// Rollback creates a new release that copies the code (process types and
// images) and config vars of the release named by target.
func (p *Platform) Rollback(ctx context.Context, actor *Account, ident, target string) (*Release, error) {
	var rel *Release
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		to, err := findRelease(tx, app, target)
		if err != nil {
			return err
		}
		if !Eligible(to) {
			return errorf(KindInvalid, "Release v%d is %s and cannot be rolled back to.", to.Version, to.Status)
		}
		rel, err = p.release(tx, ev, app, actor, fmt.Sprintf("Rollback to v%d", to.Version), to.Config, to.Processes)
		return err
	})
	return rel, err
}

// imageDigest is an OCI content digest as `heroku container:release` sends it.
var imageDigest = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// ImageUpdate points a process type at an image.
type ImageUpdate struct {
	Type, Image string
}

// DeployImages creates one release in which each named process type runs
// the given image; other types keep what the current release runs.
func (p *Platform) DeployImages(ctx context.Context, actor *Account, ident string, updates []ImageUpdate) (*Release, error) {
	rel, _, err := p.UpdateFormation(ctx, actor, ident, updates, nil)
	return rel, err
}

func checkImages(updates []ImageUpdate) error {
	for _, u := range updates {
		if !processType.MatchString(u.Type) {
			return errorf(KindInvalid, "Invalid process type %q.", u.Type)
		}
		if !imageDigest.MatchString(u.Image) {
			return errorf(KindInvalid, "Invalid docker_image %q: expected an image id such as sha256:<64 hex digits>.", u.Image)
		}
	}
	return nil
}

// deploy records the release of images inside tx.
func (p *Platform) deploy(tx *store.Tx, ev *[]Event, app *App, actor *Account, updates []ImageUpdate) (*Release, error) {
	cur, err := current(tx, app)
	if err != nil {
		return nil, err
	}
	procs := maps.Clone(cur.Processes)
	for _, u := range updates {
		procs[u.Type] = Process{Image: u.Image}
	}
	desc := "Deploy " + strings.TrimPrefix(updates[0].Image, "sha256:")[:8]
	return p.release(tx, ev, app, actor, desc, cur.Config, procs)
}

// ReleaseConfig returns the config vars a release was made with.
func (p *Platform) ReleaseConfig(ctx context.Context, actor *Account, ident, release string) (map[string]string, error) {
	_, r, _, err := p.Release(ctx, actor, ident, release)
	if err != nil {
		return nil, err
	}
	return r.Config, nil
}
