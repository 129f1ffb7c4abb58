package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/skiffhq/skiff/internal/store"
)

// Build is one build of an app from source.
type Build = store.Build

// BaseImage is a base image (an imported stack) that Dockerfiles name in FROM.
type BaseImage = store.Stack

// BuildSource says where a build's source comes from.
type BuildSource struct {
	URL, Version, Checksum string
}

// CreateBuild records a pending build of the app ident by actor.
func (p *Platform) CreateBuild(ctx context.Context, actor *Account, ident string, src BuildSource) (*App, *Build, error) {
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, err
	}
	var app *App
	var b *Build
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		now := p.now()
		b = &Build{ID: newID(), AppID: app.ID, Status: "pending", SourceURL: src.URL, SourceVersion: src.Version,
			SourceChecksum: src.Checksum, StreamKey: hex.EncodeToString(key), UserID: actor.ID, UserEmail: actor.Email,
			CreatedAt: now, UpdatedAt: now}
		if err := tx.CreateBuild(b); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventAudit, AppID: app.ID, AppName: app.Name, Message: "Build started by user " + actor.Email, Time: now})
		return nil
	})
	return app, b, err
}

// BuildOutcome is how a build ended.
type BuildOutcome struct {
	// Err is the build's error (its message is the user's to read); nil
	// means it succeeded and Processes are released.
	Err error
	// Processes are the release's process types: the built images and
	// their commands. They replace the current release's.
	Processes map[string]Process
	// Checksum of the source ("SHA256:<hex>"), when known.
	Checksum string
}

// FinishBuild records a build's outcome. A successful build creates, in the
// same transaction, the release "Deploy <version prefix>" running its
// images with the current config; a failed one creates no release.
func (p *Platform) FinishBuild(ctx context.Context, appID, buildID string, out BuildOutcome) (*Release, error) {
	var rel *Release
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app, err := tx.AppByID(appID)
		if err != nil {
			return err
		}
		b, err := tx.BuildByID(appID, buildID)
		if err != nil {
			return err
		}
		now := p.now()
		if out.Err != nil {
			*ev = append(*ev, Event{Kind: EventAudit, AppID: app.ID, AppName: app.Name, Time: now,
				Message: "Build failed -- check your build output: " + b.ID})
			return tx.FinishBuild(appID, buildID, "failed", "", out.Err.Error(), out.Checksum, now)
		}
		for t := range out.Processes {
			if !processType.MatchString(t) {
				return errorf(KindInvalid, "Invalid process type %q.", t)
			}
		}
		if len(out.Processes) == 0 {
			return errorf(KindInvalid, "The build produced no process types.")
		}
		cur, err := current(tx, app)
		if err != nil {
			return err
		}
		actor, err := tx.AccountByID(b.UserID)
		if err != nil {
			return fmt.Errorf("build %s: its user: %w", b.ID, err)
		}
		*ev = append(*ev, Event{Kind: EventAudit, AppID: app.ID, AppName: app.Name, Message: "Build succeeded", Time: now})
		if rel, err = p.release(tx, ev, app, actor, "Deploy "+versionPrefix(b.SourceVersion, b.ID), cur.Config, out.Processes); err != nil {
			return err
		}
		return tx.FinishBuild(appID, buildID, "succeeded", rel.ID, "", out.Checksum, now)
	})
	return rel, err
}

var hexVersion = regexp.MustCompile(`^[0-9a-f]{8,}$`)

// versionPrefix is what a deploy's description names: the first 8 hex
// digits of a commit, another version as given, else the build id's start.
func versionPrefix(version, buildID string) string {
	switch {
	case hexVersion.MatchString(version):
		return version[:8]
	case version != "":
		return version
	}
	return buildID[:8]
}

// FailPendingBuilds marks the builds a stopped server left pending as failed.
func (p *Platform) FailPendingBuilds(ctx context.Context) error {
	return p.db.Write(ctx, func(tx *store.Tx) error {
		return tx.FailPendingBuilds("The build was interrupted: the server stopped.", p.now())
	})
}

// Builds lists an app's builds, one page at a time.
func (p *Platform) Builds(ctx context.Context, actor *Account, ident string, page store.Page) (bs []*Build, more bool, err error) {
	err = p.read(ctx, func(tx *store.Tx) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		bs, more, err = tx.Builds(app.ID, page)
		return err
	})
	return bs, more, err
}

// Build returns one of an app's builds.
func (p *Platform) Build(ctx context.Context, actor *Account, ident, id string) (*App, *Build, error) {
	var app *App
	var b *Build
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		b, err = tx.BuildByID(app.ID, id)
		if errors.Is(err, store.ErrNotFound) {
			return errorf(KindNotFound, "Couldn't find that build.")
		}
		return err
	})
	return app, b, err
}

// BuildByStreamKey finds the build an output_stream_url names.
func (p *Platform) BuildByStreamKey(ctx context.Context, key string) (*Build, error) {
	var b *Build
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		b, err = tx.BuildByStreamKey(key)
		return err
	})
	return b, err
}

// LatestBuild returns the app's newest build with status, or nil.
func (p *Platform) LatestBuild(ctx context.Context, appID, status string) (*Build, error) {
	var b *Build
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		b, err = tx.LatestBuild(appID, status)
		if errors.Is(err, store.ErrNotFound) {
			b, err = nil, nil
		}
		return err
	})
	return b, err
}

// stackName is the rule for an imported stack's name: what FROM accepts
// as an image name.
var stackName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$`)

// CheckStackName refuses a name FROM could not name.
func CheckStackName(name string) error {
	if !stackName.MatchString(name) || strings.EqualFold(name, "scratch") {
		return errorf(KindInvalid, "Invalid stack name %q: use lower-case letters, digits, '.', '_' and '-', optionally with a :tag (and not \"scratch\").", name)
	}
	return nil
}

// PutStack makes name (an admin's choice) refer to the image id.
func (p *Platform) PutStack(ctx context.Context, actor *Account, name, imageID string) (*BaseImage, error) {
	if !actor.Admin {
		return nil, errorf(KindForbidden, "Only an admin can import stacks.")
	}
	if err := CheckStackName(name); err != nil {
		return nil, err
	}
	now := p.now()
	s := &BaseImage{Name: name, Image: imageID, CreatedAt: now, UpdatedAt: now}
	err := p.db.Write(ctx, func(tx *store.Tx) error { return tx.PutStack(s) })
	return s, err
}

// StackImage returns the image id of an imported stack. A name without a
// tag also finds "name:latest".
func (p *Platform) StackImage(ctx context.Context, name string) (string, error) {
	var id string
	err := p.read(ctx, func(tx *store.Tx) error {
		s, err := tx.StackByName(name)
		if errors.Is(err, store.ErrNotFound) && !strings.Contains(name, ":") {
			s, err = tx.StackByName(name + ":latest")
		}
		if errors.Is(err, store.ErrNotFound) {
			return errorf(KindNotFound, "No base image %q: import one with `skiff stack:import %s ROOTFS.tar`.", name, name)
		}
		if err != nil {
			return err
		}
		id = s.Image
		return nil
	})
	return id, err
}
