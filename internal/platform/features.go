package platform

import (
	"context"
	"fmt"
	"time"

	"github.com/skiffhq/skiff/internal/store"
)

// FeatureInfo describes an app feature Skiff offers.
type FeatureInfo struct {
	ID, Name, DisplayName, Description, DocURL, State string
}

// Features lists the app features Skiff knows.
var Features = []FeatureInfo{
	{Name: "preboot", DisplayName: "Preboot",
		Description: "Provide seamless web dyno deploys: new web dynos take traffic only once they are up.",
		DocURL:      "https://devcenter.heroku.com/articles/preboot"},
	{Name: "log-runtime-metrics", DisplayName: "Log runtime metrics",
		Description: "Emit dyno resource usage (memory, load) into the app's log stream every 20 seconds.",
		DocURL:      "https://devcenter.heroku.com/articles/log-runtime-metrics"},
	// Skiff's own: Heroku's router picks a dyno at random; with this on,
	// it picks the less busy of two random ones.
	{Name: "router-p2c", DisplayName: "Router: power of two choices",
		Description: "Send each request to the web dyno with fewer requests in flight of two picked at random, instead of to a random one.",
		DocURL:      "https://github.com/skiffhq/skiff/blob/main/docs/router.md"},
}

func init() {
	for i := range Features {
		Features[i].ID = stableID("feature", Features[i].Name)
		Features[i].State = "general"
	}
}

// AppFeature is a feature with its state on one app.
type AppFeature struct {
	FeatureInfo
	Enabled              bool
	CreatedAt, UpdatedAt time.Time
}

func findFeature(name string) (FeatureInfo, error) {
	for _, f := range Features {
		if f.Name == name || f.ID == name {
			return f, nil
		}
	}
	return FeatureInfo{}, errorf(KindNotFound, "Couldn't find that feature.")
}

// AppFeatures lists every feature and whether it is enabled on the app.
func (p *Platform) AppFeatures(ctx context.Context, actor *Account, ident string) ([]AppFeature, error) {
	var out []AppFeature
	err := p.read(ctx, func(tx *store.Tx) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		stored, err := tx.Features(app.ID)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, f := range Features {
			af := AppFeature{FeatureInfo: f, CreatedAt: app.CreatedAt, UpdatedAt: app.CreatedAt}
			if s, ok := stored[f.Name]; ok {
				af.Enabled, af.CreatedAt, af.UpdatedAt = s.Enabled, s.CreatedAt, s.UpdatedAt
			}
			out = append(out, af)
		}
		return nil
	})
	return out, err
}

// AppFeature returns one feature's state on an app.
func (p *Platform) AppFeature(ctx context.Context, actor *Account, ident, name string) (*AppFeature, error) {
	info, err := findFeature(name)
	if err != nil {
		return nil, err
	}
	all, err := p.AppFeatures(ctx, actor, ident)
	if err != nil {
		return nil, err
	}
	for _, f := range all {
		if f.Name == info.Name {
			return &f, nil
		}
	}
	return nil, errorf(KindNotFound, "Couldn't find that feature.")
}

// SetAppFeature enables or disables a feature on an app. It creates no
// release and restarts nothing.
func (p *Platform) SetAppFeature(ctx context.Context, actor *Account, ident, name string, enabled bool) (*AppFeature, error) {
	info, err := findFeature(name)
	if err != nil {
		return nil, err
	}
	err = p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		stored, err := tx.Features(app.ID)
		if err != nil {
			return err
		}
		now := p.now()
		f := &store.Feature{AppID: app.ID, Name: info.Name, Enabled: enabled, CreatedAt: now, UpdatedAt: now}
		if s, ok := stored[info.Name]; ok {
			if s.Enabled == enabled {
				return nil
			}
			f.CreatedAt = s.CreatedAt
		}
		if err := tx.PutFeature(f); err != nil {
			return err
		}
		verb := "Disable"
		if enabled {
			verb = "Enable"
		}
		*ev = append(*ev, Event{Kind: EventApp, AppID: app.ID, AppName: app.Name,
			Message: fmt.Sprintf("%s %s by user %s", verb, info.Name, actor.Email), Time: now})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p.AppFeature(ctx, actor, ident, name)
}
