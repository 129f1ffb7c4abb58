package platform

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/store"
)

// App is an application record.
type App = store.App

// Stack is a runtime environment apps can build and run on.
type Stack struct {
	ID, Name, State string
	Default         bool
}

// Region is where an app runs.
type Region struct {
	ID, Name, Description, Country, Locale string
}

// Stacks is every stack Skiff offers. Apps run OCI images, which Heroku
// calls the "container" stack.
var Stacks = []Stack{{ID: stableID("stack", "container"), Name: "container", State: "general", Default: true}}

// Regions is every region. One Skiff installation is one region; it is
// named "us" because Heroku's tools show a region only when it is not "us".
var Regions = []Region{{ID: stableID("region", "us"), Name: "us", Description: "This Skiff installation", Country: "", Locale: ""}}

func stableID(kind, name string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("skiff:"+kind+":"+name)).String()
}

// StackByName finds a stack by name or id.
func StackByName(name string) (Stack, bool) {
	for _, s := range Stacks {
		if strings.EqualFold(s.Name, name) || s.ID == name {
			return s, true
		}
	}
	return Stack{}, false
}

// RegionByName finds a region by name or id.
func RegionByName(name string) (Region, bool) {
	for _, r := range Regions {
		if strings.EqualFold(r.Name, name) || r.ID == name {
			return r, true
		}
	}
	return Region{}, false
}

// AppSpec is what a new app is created with; empty fields take defaults.
type AppSpec struct {
	Name, Region, Stack string
}

// CreateApp creates an app owned by actor with its first releases:
// v1 "Initial release" and v2 "Enable Logplex", as Heroku does.
func (p *Platform) CreateApp(ctx context.Context, actor *Account, spec AppSpec) (*App, error) {
	if spec.Region != "" {
		if _, ok := RegionByName(spec.Region); !ok {
			return nil, errorf(KindNotFound, "Couldn't find that region.")
		}
	}
	stack := Stacks[0]
	if spec.Stack != "" {
		s, ok := StackByName(spec.Stack)
		if !ok {
			return nil, errorf(KindNotFound, "Couldn't find that stack.")
		}
		stack = s
	}
	generated := spec.Name == ""
	if !generated {
		if err := validAppName(spec.Name); err != nil {
			return nil, err
		}
	}
	now := p.now()
	app := &App{ID: newID(), OwnerID: actor.ID, OwnerEmail: actor.Email, Stack: stack.Name, BuildStack: stack.Name, CreatedAt: now, UpdatedAt: now}
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app.Name = spec.Name
		for i := 0; generated; i++ {
			app.Name = generateName()
			taken, err := tx.AppNameTaken(app.Name)
			if err != nil {
				return err
			}
			if !taken {
				break
			}
			if i > 50 {
				return errors.New("no free generated app name after 50 tries")
			}
		}
		if err := tx.CreateApp(app); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errorf(KindInvalid, "Name %s is already taken", app.Name)
			}
			return err
		}
		if err := tx.AddCollaborator(&store.Collaborator{ID: newID(), AppID: app.ID, AccountID: actor.ID, Role: "owner", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventApp, AppID: app.ID, AppName: app.Name, Time: now})
		empty := map[string]string{}
		if _, err := p.release(tx, ev, app, actor, "Initial release", empty, map[string]store.Process{}); err != nil {
			return err
		}
		_, err := p.release(tx, ev, app, actor, "Enable Logplex", empty, map[string]store.Process{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return p.App(ctx, actor, app.ID)
}

// access returns the app named (or with id) ident if actor may use it.
func access(tx *store.Tx, actor *Account, ident string) (*App, error) {
	var app *App
	var err error
	if uuid.Validate(ident) == nil {
		app, err = tx.AppByID(ident)
	} else {
		app, err = tx.AppByName(ident)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(KindNotFound, "Couldn't find that app.")
	}
	if err != nil {
		return nil, err
	}
	if _, err := tx.Collaborator(app.ID, actor.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(KindForbidden, "You do not have access to the app %s.", app.Name)
		}
		return nil, err
	}
	return app, nil
}

// App returns one app the actor can access, by name or id.
func (p *Platform) App(ctx context.Context, actor *Account, ident string) (*App, error) {
	var app *App
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		app, err = access(tx, actor, ident)
		return err
	})
	return app, err
}

// Apps lists the apps actor can access, one page at a time.
func (p *Platform) Apps(ctx context.Context, actor *Account, page store.Page) (apps []*App, more bool, err error) {
	err = p.read(ctx, func(tx *store.Tx) error {
		apps, more, err = tx.Apps(actor.ID, page)
		return err
	})
	return apps, more, err
}

// AppUpdate holds the app settings a PATCH may change; nil means unchanged.
type AppUpdate struct {
	Name        *string
	Maintenance *bool
	BuildStack  *string
}

// UpdateApp renames an app, toggles maintenance mode or changes its stack.
func (p *Platform) UpdateApp(ctx context.Context, actor *Account, ident string, u AppUpdate) (*App, error) {
	var app *App
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		var audit []string
		if u.Name != nil && *u.Name != app.Name {
			if err := validAppName(*u.Name); err != nil {
				return err
			}
			audit = append(audit, fmt.Sprintf("Rename app from %s to %s", app.Name, *u.Name))
			app.Name = *u.Name
		}
		if u.Maintenance != nil && *u.Maintenance != app.Maintenance {
			app.Maintenance = *u.Maintenance
			if app.Maintenance {
				audit = append(audit, "Enable maintenance mode")
			} else {
				audit = append(audit, "Disable maintenance mode")
			}
		}
		if u.BuildStack != nil {
			s, ok := StackByName(*u.BuildStack)
			if !ok {
				return errorf(KindNotFound, "Couldn't find that stack.")
			}
			if s.Name != app.BuildStack {
				audit = append(audit, fmt.Sprintf("Stack changed from %s to %s", app.BuildStack, s.Name))
				app.BuildStack = s.Name
			}
		}
		if len(audit) == 0 {
			return nil
		}
		app.UpdatedAt = p.now()
		if err := tx.UpdateApp(app); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errorf(KindInvalid, "Name %s is already taken", app.Name)
			}
			return err
		}
		for _, line := range audit {
			*ev = append(*ev, Event{Kind: EventApp, AppID: app.ID, AppName: app.Name, Message: line + " by user " + actor.Email, Time: app.UpdatedAt})
		}
		return nil
	})
	return app, err
}

// DestroyApp deletes an app and everything that belongs to it. Only the
// owner may; the destroy event tells the dyno manager to stop its dynos.
func (p *Platform) DestroyApp(ctx context.Context, actor *Account, ident string) (*App, error) {
	var app *App
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		if app.OwnerID != actor.ID {
			return errorf(KindForbidden, "Only the owner can destroy the app %s.", app.Name)
		}
		if err := tx.DeleteApp(app.ID); err != nil {
			return err
		}
		*ev = append(*ev, Event{Kind: EventDestroy, AppID: app.ID, AppName: app.Name, Time: p.now()})
		return nil
	})
	return app, err
}

// Collaborators lists who can access an app.
func (p *Platform) Collaborators(ctx context.Context, actor *Account, ident string) (*App, []*store.Collaborator, error) {
	var app *App
	var cs []*store.Collaborator
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		cs, err = tx.Collaborators(app.ID)
		return err
	})
	return app, cs, err
}
