package api

import (
	"sort"

	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/store"
)

// The JSON shapes below follow the Platform API schema's field names
// (../shared/reference/heroku-platform-api-schema.json).

type named struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type userRef struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

var cedar = named{ID: "5f4e5a3e-3a7e-4b7c-9f59-7d8d0f8d2a11", Name: "cedar"}

type appJSON struct {
	ACM                          bool    `json:"acm"`
	ArchivedAt                   *string `json:"archived_at"`
	BuildpackProvidedDescription *string `json:"buildpack_provided_description"`
	BuildStack                   named   `json:"build_stack"`
	CreatedAt                    string  `json:"created_at"`
	CreateStatus                 string  `json:"create_status"`
	Generation                   named   `json:"generation"`
	GitURL                       string  `json:"git_url"`
	ID                           string  `json:"id"`
	InternalRouting              *bool   `json:"internal_routing"`
	Maintenance                  bool    `json:"maintenance"`
	Name                         string  `json:"name"`
	Owner                        userRef `json:"owner"`
	Organization                 *named  `json:"organization"`
	Team                         *named  `json:"team"`
	Region                       named   `json:"region"`
	ReleasedAt                   *string `json:"released_at"`
	RepoSize                     *int    `json:"repo_size"`
	SlugSize                     *int    `json:"slug_size"`
	Space                        *named  `json:"space"`
	Stack                        named   `json:"stack"`
	UpdatedAt                    string  `json:"updated_at"`
	WebURL                       string  `json:"web_url"`
}

func stackRef(name string) named {
	s, _ := platform.StackByName(name)
	return named{ID: s.ID, Name: s.Name}
}

func (s *Server) appJSON(a *platform.App) appJSON {
	r := platform.Regions[0]
	return appJSON{
		ACM: a.ACM, BuildStack: stackRef(a.BuildStack), CreatedAt: timeJSON(a.CreatedAt), CreateStatus: "complete",
		Generation: cedar, GitURL: s.cfg.GitURL(a.Name), ID: a.ID, Maintenance: a.Maintenance, Name: a.Name,
		Owner: userRef{ID: a.OwnerID, Email: a.OwnerEmail}, Region: named{ID: r.ID, Name: r.Name},
		ReleasedAt: timePtrJSON(a.ReleasedAt), Stack: stackRef(a.Stack), UpdatedAt: timeJSON(a.UpdatedAt),
		WebURL: s.cfg.WebURL(a.Name),
	}
}

type releaseJSON struct {
	AddonPlanNames      []string      `json:"addon_plan_names"`
	Artifacts           []artifact    `json:"artifacts"`
	App                 named         `json:"app"`
	CreatedAt           string        `json:"created_at"`
	Description         string        `json:"description"`
	ID                  string        `json:"id"`
	UpdatedAt           string        `json:"updated_at"`
	Slug                *named        `json:"slug"`
	Status              string        `json:"status"`
	User                userRef       `json:"user"`
	Version             int           `json:"version"`
	Current             bool          `json:"current"`
	OutputStreamURL     *string       `json:"output_stream_url"`
	EligibleForRollback bool          `json:"eligible_for_rollback"`
	ProcessTypes        []processJSON `json:"process_types"`
}

type artifact struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// processJSON is a Skiff extension: what each process type of a release
// runs.
type processJSON struct {
	Type    string `json:"type"`
	Command string `json:"command,omitempty"`
	Image   string `json:"image,omitempty"`
}

func releaseToJSON(app *platform.App, r *store.Release, current bool) releaseJSON {
	j := releaseJSON{
		AddonPlanNames: []string{}, Artifacts: []artifact{}, App: named{ID: app.ID, Name: app.Name},
		CreatedAt: timeJSON(r.CreatedAt), Description: r.Description, ID: r.ID, UpdatedAt: timeJSON(r.UpdatedAt),
		Status: r.Status, User: userRef{ID: r.UserID, Email: r.UserEmail}, Version: r.Version, Current: current,
		EligibleForRollback: platform.Eligible(r), ProcessTypes: []processJSON{},
	}
	types := make([]string, 0, len(r.Processes))
	for t := range r.Processes {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		p := r.Processes[t]
		j.ProcessTypes = append(j.ProcessTypes, processJSON{Type: t, Command: p.Command, Image: p.Image})
		if p.Image != "" {
			j.Artifacts = append(j.Artifacts, artifact{Type: "oci-image", ID: p.Image})
		}
	}
	return j
}

type formationJSON struct {
	App       named  `json:"app"`
	Command   string `json:"command"`
	CreatedAt string `json:"created_at"`
	DynoSize  named  `json:"dyno_size"`
	ID        string `json:"id"`
	Quantity  int    `json:"quantity"`
	Size      string `json:"size"`
	Type      string `json:"type"`
	UpdatedAt string `json:"updated_at"`
}

func formationToJSON(app *platform.App, f *store.Formation) formationJSON {
	size, _ := platform.SizeByName(f.Size)
	return formationJSON{App: named{ID: app.ID, Name: app.Name}, Command: f.Command, CreatedAt: timeJSON(f.CreatedAt),
		DynoSize: named{ID: size.ID, Name: size.Name}, ID: f.ID, Quantity: f.Quantity, Size: f.Size, Type: f.Type,
		UpdatedAt: timeJSON(f.UpdatedAt)}
}

type accountJSON struct {
	AllowTracking           bool    `json:"allow_tracking"`
	Beta                    bool    `json:"beta"`
	CreatedAt               string  `json:"created_at"`
	Email                   string  `json:"email"`
	Federated               bool    `json:"federated"`
	ID                      string  `json:"id"`
	LastLogin               *string `json:"last_login"`
	Name                    *string `json:"name"`
	SMSNumber               *string `json:"sms_number"`
	SuspendedAt             *string `json:"suspended_at"`
	DelinquentAt            *string `json:"delinquent_at"`
	TwoFactorAuthentication bool    `json:"two_factor_authentication"`
	UpdatedAt               string  `json:"updated_at"`
	Verified                bool    `json:"verified"`
	DefaultTeam             *named  `json:"default_team"`
	// Admin is a Skiff extension: whether the account may create accounts.
	Admin bool `json:"admin"`
}

func accountToJSON(a *platform.Account) accountJSON {
	return accountJSON{CreatedAt: timeJSON(a.CreatedAt), Email: a.Email, ID: a.ID, UpdatedAt: timeJSON(a.UpdatedAt), Verified: true, Admin: a.Admin}
}

type accessToken struct {
	ExpiresIn *int    `json:"expires_in"`
	ID        string  `json:"id"`
	Token     *string `json:"token"`
}

type authorizationJSON struct {
	AccessToken  accessToken `json:"access_token"`
	Client       *named      `json:"client"`
	CreatedAt    string      `json:"created_at"`
	Description  string      `json:"description"`
	Grant        *named      `json:"grant"`
	ID           string      `json:"id"`
	RefreshToken *named      `json:"refresh_token"`
	Scope        []string    `json:"scope"`
	Session      *named      `json:"session"`
	UpdatedAt    string      `json:"updated_at"`
	User         userRef     `json:"user"`
}

func (s *Server) authorizationToJSON(a *platform.Authorization) authorizationJSON {
	var expires *int
	if a.ExpiresAt != nil {
		n := max(0, int(a.ExpiresAt.Sub(s.cfg.Now()).Seconds()))
		expires = &n
	}
	var tok *string
	if a.Secret != "" {
		tok = &a.Secret
	}
	return authorizationJSON{
		AccessToken: accessToken{ExpiresIn: expires, ID: a.ID, Token: tok}, CreatedAt: timeJSON(a.CreatedAt),
		Description: a.Description, ID: a.ID, Scope: []string{"global"}, UpdatedAt: timeJSON(a.UpdatedAt),
		User: userRef{ID: a.AccountID, Email: a.Email},
	}
}
