package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() {
	register("releases", command{
		usage: "releases -a APP [-n NUM] [--json]", help: "display the releases for an app",
		flags: []flagDef{{Long: "num", Short: 'n', Value: true, Usage: "number of releases to show (default 15)"}, {Long: "json", Usage: "output releases in json format"}},
		app:   appRequired, run: releasesList,
	})
	register("releases:info", command{
		usage: "releases:info [vN] -a APP [--json | --shell]", help: "view detailed information for a release",
		flags: []flagDef{{Long: "json", Usage: "output in json format"}, {Long: "shell", Short: 's', Usage: "output the config vars in shell format"}},
		app:   appRequired, maxArgs: 1, run: releasesInfo,
	})
	register("rollback", command{
		usage: "rollback [vN] -a APP", help: "roll back to a previous release (default: the last eligible one before the current)",
		app: appRequired, maxArgs: 1, run: rollback,
	}, "releases:rollback")
}

// release is what the client reads of a release.
type release struct {
	ID                  string   `json:"id"`
	Version             int      `json:"version"`
	Description         string   `json:"description"`
	Status              string   `json:"status"`
	Current             bool     `json:"current"`
	EligibleForRollback bool     `json:"eligible_for_rollback"`
	AddonPlanNames      []string `json:"addon_plan_names"`
	CreatedAt           string   `json:"created_at"`
	OutputStreamURL     *string  `json:"output_stream_url"`
	User                struct {
		Email string `json:"email"`
	} `json:"user"`
}

// statusNote is how Heroku's CLI annotates a release that is not simply
// succeeded.
func statusNote(status string) string {
	switch status {
	case "expired":
		return "release expired"
	case "failed":
		return "release command failed"
	case "pending":
		return "release command executing"
	}
	return ""
}

func (e *Env) recentReleases(app string, n int) ([]json.RawMessage, []release, error) {
	var raws []json.RawMessage
	err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(app) + "/releases", Accept: "3.sdk",
		Range: fmt.Sprintf("version ..; max=%d, order=desc", n), Partial: true}, &raws)
	if err != nil {
		return nil, nil, err
	}
	rs := make([]release, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &rs[i]); err != nil {
			return nil, nil, err
		}
	}
	return raws, rs, nil
}

func releasesList(e *Env, in *Input) error {
	n := 15
	if v := in.String("num"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			return flagErrorf("--num %q: want a positive whole number", v)
		}
	}
	raws, rs, err := e.recentReleases(in.App, n)
	if err != nil {
		return err
	}
	if in.Bool("json") {
		return printJSON(e.Out, raws)
	}
	if len(rs) == 0 {
		fmt.Fprintf(e.Out, "%s has no releases.\n", in.App)
		return nil
	}
	title := in.App + " Releases"
	for _, r := range rs {
		if r.Current {
			title += fmt.Sprintf(" - Current: v%d", r.Version)
			break
		}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Version > rs[j].Version })
	header(e.Out, title)
	table(e.Out, []string{"v", "description", "user", "created_at"}, releaseRows(rs, e.now()))
	return nil
}

func releaseRows(rs []release, now time.Time) [][]string {
	rows := make([][]string, len(rs))
	for i, r := range rs {
		desc := r.Description
		if note := statusNote(r.Status); note != "" {
			desc += " " + note
		}
		when := r.CreatedAt
		if t, err := time.Parse(time.RFC3339, r.CreatedAt); err == nil {
			when = ago(t, now)
		}
		rows[i] = []string{fmt.Sprintf("v%d", r.Version), desc, r.User.Email, when}
	}
	return rows
}

// releaseVersion reads "v12", "V12" or "12".
func releaseVersion(s string) (string, error) {
	v := strings.TrimPrefix(strings.ToLower(s), "v")
	if n, err := strconv.Atoi(v); err != nil || n < 1 {
		return "", fmt.Errorf("Invalid release %q: expected a version such as v12.", s)
	}
	return v, nil
}

func (e *Env) releaseByVersion(app, arg string) (json.RawMessage, release, error) {
	var raw json.RawMessage
	var r release
	v, err := releaseVersion(arg)
	if err != nil {
		return nil, r, err
	}
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(app) + "/releases/" + v, Accept: "3.sdk"}, &raw); err != nil {
		return nil, r, err
	}
	return raw, r, json.Unmarshal(raw, &r)
}

func releasesInfo(e *Env, in *Input) error {
	var raw json.RawMessage
	var r release
	if len(in.Args) == 1 {
		var err error
		if raw, r, err = e.releaseByVersion(in.App, in.Args[0]); err != nil {
			return err
		}
	} else {
		raws, rs, err := e.recentReleases(in.App, 10)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fmt.Errorf("%s has no releases.", in.App)
		}
		raw, r = raws[0], rs[0]
	}
	if in.Bool("json") {
		return printJSON(e.Out, raw)
	}
	var cfg configVars
	if err := e.Do(Request{Method: "GET", Path: fmt.Sprintf("/apps/%s/releases/%d/config-vars", escape(in.App), r.Version)}, &cfg); err != nil {
		return err
	}
	change := r.Description
	if note := statusNote(r.Status); note != "" {
		change += " (" + note + ")"
	}
	eligible := "No"
	if r.EligibleForRollback {
		eligible = "Yes"
	}
	header(e.Out, fmt.Sprintf("Release v%d", r.Version))
	styledObject(e.Out, []field{
		{"Add-ons", r.AddonPlanNames},
		{"By", r.User.Email},
		{"Change", change},
		{"Eligible for Rollback?", eligible},
		{"When", r.CreatedAt},
	})
	fmt.Fprintln(e.Out)
	header(e.Out, fmt.Sprintf("v%d Config vars", r.Version))
	if in.Bool("shell") {
		for _, v := range cfg {
			if v.Value != nil {
				fmt.Fprintf(e.Out, "%s=%s\n", v.Key, shellQuote(*v.Value))
			}
		}
		return nil
	}
	styledObject(e.Out, cfg.fields())
	return nil
}

// rollbackTarget picks what `rollback` without an argument goes back to:
// of the latest releases, the second one eligible for rollback (the first
// is normally the current release), as Heroku's CLI does.
func rollbackTarget(rs []release) (release, bool) {
	seen := 0
	for _, r := range rs {
		if !r.EligibleForRollback {
			continue
		}
		if seen++; seen == 2 {
			return r, true
		}
	}
	return release{}, false
}

func rollback(e *Env, in *Input) error {
	var target release
	if len(in.Args) == 1 {
		var err error
		if _, target, err = e.releaseByVersion(in.App, in.Args[0]); err != nil {
			return err
		}
	} else {
		_, rs, err := e.recentReleases(in.App, 10)
		if err != nil {
			return err
		}
		var ok bool
		if target, ok = rollbackTarget(rs); !ok {
			return fmt.Errorf("No eligible release found for %s to roll back to.", appLabel(in.App))
		}
	}
	var latest release
	err := e.action(fmt.Sprintf("Rolling back %s to v%d", appLabel(in.App), target.Version), func() (string, error) {
		err := e.Do(Request{Method: "POST", Path: "/apps/" + escape(in.App) + "/releases", Accept: "3.sdk",
			Body: map[string]string{"release": target.ID}}, &latest)
		return fmt.Sprintf("done, v%d", latest.Version), err
	})
	if err != nil {
		return err
	}
	e.warn("Rollback affects code and config vars; it doesn't add or remove addons.")
	if latest.Version > 0 {
		e.warn(fmt.Sprintf("To undo, run: skiff rollback v%d -a %s", latest.Version-1, in.App))
	}
	if latest.OutputStreamURL != nil && *latest.OutputStreamURL != "" {
		fmt.Fprintln(e.Out, "Running release command...")
		return e.streamOutput(*latest.OutputStreamURL)
	}
	return nil
}

// streamOutput copies a release command's output stream to stdout. The
// stream URL carries its own credentials, so no token is sent.
func (e *Env) streamOutput(url string) error {
	client := &http.Client{}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		e.warn("Release command starting; its output is not available yet.")
		return nil
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("release output: %s", resp.Status)
	}
	_, err = io.Copy(e.Out, resp.Body)
	return err
}
