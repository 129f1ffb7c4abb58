package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
)

func init() {
	register("apps", command{
		usage: "apps [--all] [--json]", help: "list your apps",
		flags: []flagDef{{Long: "all", Short: 'A', Usage: "include every app you can see, not only yours"}, jsonFlag},
		run:   appsList,
	}, "apps:list", "list")
	register("apps:create", command{
		usage: "apps:create [NAME]", help: "create a new app",
		flags: []flagDef{
			{Long: "app", Short: 'a', Value: true, Usage: "name of the app to create (same as NAME)"},
			{Long: "region", Value: true, Usage: "region for the app to run in"},
			{Long: "stack", Short: 's', Value: true, Usage: "the stack to create the app on"},
			{Long: "no-remote", Short: 'n', Usage: "do not create a git remote (skiff never does; accepted for compatibility)"},
			{Long: "remote", Short: 'r', Value: true, Usage: "accepted for compatibility; skiff creates no git remote"},
			{Long: "json", Usage: "output in json format"},
		},
		maxArgs: 1, run: appsCreate,
	}, "create")
	register("apps:info", command{
		usage: "apps:info [-a APP] [--json | --shell]", help: "show detailed app information",
		flags: []flagDef{jsonFlag, {Long: "shell", Short: 's', Usage: "output more shell friendly key/value pairs"}},
		app:   appOptional, maxArgs: 1, run: appsInfo,
	}, "info")
	register("apps:rename", command{
		usage: "apps:rename NEWNAME -a APP", help: "rename an app",
		app: appRequired, minArgs: 1, maxArgs: 1, run: appsRename,
	}, "rename")
	register("apps:destroy", command{
		usage: "apps:destroy -a APP --confirm APP", help: "permanently destroy an app",
		flags: []flagDef{{Long: "confirm", Short: 'c', Value: true, Usage: "the app's name, to confirm"}},
		app:   appOptional, maxArgs: 1, run: appsDestroy,
	}, "destroy", "apps:delete")
}

// app is what the client reads of an app.
type app struct {
	Name            string  `json:"name"`
	ACM             bool    `json:"acm"`
	ArchivedAt      *string `json:"archived_at"`
	CreateStatus    string  `json:"create_status"`
	GitURL          string  `json:"git_url"`
	WebURL          string  `json:"web_url"`
	RepoSize        *int64  `json:"repo_size"`
	SlugSize        *int64  `json:"slug_size"`
	Maintenance     bool    `json:"maintenance"`
	Locked          bool    `json:"locked"`
	InternalRouting *bool   `json:"internal_routing"`
	Owner           struct {
		Email string `json:"email"`
	} `json:"owner"`
	Region     nameRef  `json:"region"`
	Stack      nameRef  `json:"stack"`
	BuildStack nameRef  `json:"build_stack"`
	Generation nameRef  `json:"generation"`
	Space      *nameRef `json:"space"`
}

type nameRef struct {
	Name string `json:"name"`
}

func appsList(e *Env, in *Input) error {
	path := "/users/~/apps"
	if in.Bool("all") {
		path = "/apps"
	}
	var raws []json.RawMessage
	var account struct {
		Email string `json:"email"`
	}
	if err := parallel(
		func() error { return e.Do(Request{Method: "GET", Path: path}, &raws) },
		func() error { return e.Do(Request{Method: "GET", Path: "/account"}, &account) },
	); err != nil {
		return err
	}
	apps := make([]app, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &apps[i]); err != nil {
			return err
		}
	}
	idx := make([]int, len(apps))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return apps[idx[a]].Name < apps[idx[b]].Name })
	if in.Bool("json") {
		sorted := make([]json.RawMessage, len(idx))
		for i, j := range idx {
			sorted[i] = raws[j]
		}
		return printJSON(e.Out, sorted)
	}
	if len(apps) == 0 {
		fmt.Fprintln(e.Out, "You have no apps.")
		return nil
	}
	var own, shared []app
	for _, i := range idx {
		if apps[i].Owner.Email == account.Email {
			own = append(own, apps[i])
		} else {
			shared = append(shared, apps[i])
		}
	}
	if len(own) > 0 {
		header(e.Out, account.Email+" Apps")
		for _, a := range own {
			fmt.Fprintln(e.Out, listedName(a))
		}
	}
	if len(shared) > 0 {
		fmt.Fprintln(e.Out)
		fmt.Fprintln(e.Out, "Collaborated Apps")
		fmt.Fprintln(e.Out)
		rows := make([][]string, len(shared))
		for i, a := range shared {
			rows[i] = []string{listedName(a), a.Owner.Email}
		}
		table(e.Out, []string{"Name", "Email"}, rows)
	}
	return nil
}

// listedName is an app's name as `apps` lists it: with its state and,
// outside the default region, the region.
func listedName(a app) string {
	name := a.Name
	internal := a.InternalRouting != nil && *a.InternalRouting
	switch {
	case a.Locked && internal:
		name += " [internal/locked]"
	case a.Locked:
		name += " [locked]"
	case internal:
		name += " [internal]"
	}
	if a.Region.Name != "" && a.Region.Name != "us" {
		name += " (" + a.Region.Name + ")"
	}
	return name
}

func appsCreate(e *Env, in *Input) error {
	name := in.String("app")
	if len(in.Args) > 0 {
		name = in.Args[0]
	}
	if name == "" {
		name = envApp()
	}
	body := map[string]string{}
	if name != "" {
		body["name"] = name
	}
	if v := in.String("region"); v != "" {
		body["region"] = v
	}
	if v := in.String("stack"); v != "" {
		body["stack"] = v
	}
	label := "app"
	if name != "" {
		label = appLabel(name)
	}
	var raw json.RawMessage
	var a app
	err := e.action("Creating "+label, func() (string, error) {
		if err := e.Do(Request{Method: "POST", Path: "/apps", Body: body}, &raw); err != nil {
			return "", err
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			return "", err
		}
		status := "done"
		if name == "" {
			status += ", " + appLabel(a.Name)
		}
		if in.String("region") != "" {
			status += ", region is " + a.Region.Name
		}
		if in.String("stack") != "" {
			status += ", stack is " + a.Stack.Name
		}
		return status, nil
	})
	if err != nil {
		return err
	}
	if in.Bool("json") {
		return printJSON(e.Out, raw)
	}
	fmt.Fprintf(e.Out, "%s | %s\n", a.WebURL, a.GitURL)
	return nil
}

// envApp is the app named by the environment.
func envApp() string {
	return firstNonEmpty(os.Getenv("SKIFF_APP"), os.Getenv("HEROKU_APP"))
}

// positionalApp lets apps:info and apps:destroy take the app as their
// argument, as Heroku's do.
func positionalApp(in *Input, usage string) (string, error) {
	if len(in.Args) > 0 {
		return in.Args[0], nil
	}
	if in.App == "" {
		return "", fmt.Errorf("No app specified.\nUsage: skiff %s", usage)
	}
	return in.App, nil
}

func appsInfo(e *Env, in *Input) error {
	name, err := positionalApp(in, "apps:info -a APP")
	if err != nil {
		return err
	}
	base := "/apps/" + escape(name)
	var info struct {
		Addons           json.RawMessage `json:"addons"`
		App              json.RawMessage `json:"app"`
		Collaborators    json.RawMessage `json:"collaborators"`
		Dynos            json.RawMessage `json:"dynos"`
		PipelineCoupling json.RawMessage `json:"pipeline_coupling"`
	}
	info.PipelineCoupling = json.RawMessage("null")
	optional := func(path string, out *json.RawMessage) func() error {
		return func() error {
			if e.Do(Request{Method: "GET", Path: path}, out) != nil {
				*out = json.RawMessage("[]")
			}
			return nil
		}
	}
	if err := parallel(
		func() error { return e.Do(Request{Method: "GET", Path: base}, &info.App) },
		func() error { return e.Do(Request{Method: "GET", Path: base + "/addons"}, &info.Addons) },
		optional(base+"/dynos", &info.Dynos),
		optional(base+"/collaborators", &info.Collaborators),
	); err != nil {
		return err
	}
	if in.Bool("json") {
		return printJSON(e.Out, info)
	}
	var a app
	var addons []struct {
		Plan struct {
			Name string `json:"name"`
		} `json:"plan"`
	}
	var collaborators []struct {
		User struct {
			Email string `json:"email"`
		} `json:"user"`
	}
	var dynos []struct {
		Type string `json:"type"`
	}
	for _, d := range []struct {
		raw json.RawMessage
		out any
	}{{info.App, &a}, {info.Addons, &addons}, {info.Collaborators, &collaborators}, {info.Dynos, &dynos}} {
		if err := json.Unmarshal(d.raw, d.out); err != nil {
			return err
		}
	}
	plans := []string{}
	for _, ad := range addons {
		plans = append(plans, ad.Plan.Name)
	}
	sort.Strings(plans)
	collabs := []string{}
	for _, c := range collaborators {
		if c.User.Email != a.Owner.Email {
			collabs = append(collabs, c.User.Email)
		}
	}
	sort.Strings(collabs)
	var types []string
	counts := map[string]int{}
	for _, d := range dynos {
		if counts[d.Type] == 0 {
			types = append(types, d.Type)
		}
		counts[d.Type]++
	}
	stack := a.Stack.Name
	if a.BuildStack.Name != "" && a.BuildStack.Name != a.Stack.Name {
		stack += " (next build will use " + a.BuildStack.Name + ")"
	}

	if in.Bool("shell") {
		p := func(k string, v any) { fmt.Fprintf(e.Out, "%s=%v\n", k, v) }
		p("auto_cert_mgmt", a.ACM)
		p("addons", strings.Join(plans, ","))
		p("collaborators", strings.Join(collabs, ","))
		if a.ArchivedAt != nil {
			p("archived_at", *a.ArchivedAt)
		}
		if a.CreateStatus != "complete" {
			p("create_status", a.CreateStatus)
		}
		p("git_url", a.GitURL)
		p("web_url", a.WebURL)
		p("repo_size", fileSize(a.RepoSize))
		if a.Generation.Name != "fir" {
			p("slug_size", fileSize(a.SlugSize))
		}
		p("owner", a.Owner.Email)
		p("region", a.Region.Name)
		p("dynos", inspectCounts(types, counts))
		p("stack", a.Stack.Name)
		return nil
	}

	fields := []field{{"Addons", plans}, {"Collaborators", collabs}}
	if a.ArchivedAt != nil {
		fields = append(fields, field{"Archived At", *a.ArchivedAt})
	}
	if a.CreateStatus != "complete" {
		fields = append(fields, field{"Create Status", a.CreateStatus})
	}
	if a.Space != nil {
		fields = append(fields, field{"Space", a.Space.Name})
	}
	fields = append(fields,
		field{"Auto Cert Mgmt", fmt.Sprint(a.ACM)},
		field{"Git URL", a.GitURL},
		field{"Web URL", a.WebURL},
		field{"Repo Size", fileSize(a.RepoSize)},
	)
	if a.Generation.Name != "fir" {
		fields = append(fields, field{"Slug Size", fileSize(a.SlugSize)})
	}
	var dynoList []string
	for _, t := range types {
		dynoList = append(dynoList, fmt.Sprintf("%s: %d", t, counts[t]))
	}
	fields = append(fields,
		field{"Owner", a.Owner.Email},
		field{"Region", a.Region.Name},
		field{"Dynos", strings.Join(dynoList, ", ")},
		field{"Stack", stack},
	)
	header(e.Out, a.Name)
	styledObject(e.Out, fields)
	return nil
}

var jsIdentifier = regexp.MustCompile(`^[A-Za-z_$][\w$]*$`)

// inspectCounts formats counts per dyno type as Node's util.inspect shows
// an object: "{ web: 2, 'my-type': 1 }", or "{}".
func inspectCounts(keys []string, counts map[string]int) string {
	if len(keys) == 0 {
		return "{}"
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		label := k
		if !jsIdentifier.MatchString(k) {
			label = "'" + k + "'"
		}
		parts[i] = fmt.Sprintf("%s: %d", label, counts[k])
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

func appsRename(e *Env, in *Input) error {
	newName := in.Args[0]
	var a app
	err := e.action(fmt.Sprintf("Renaming %s to %s", appLabel(in.App), newName), func() (string, error) {
		return "", e.Do(Request{Method: "PATCH", Path: "/apps/" + escape(in.App), Body: map[string]string{"name": newName}}, &a)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "%s | %s\n", a.WebURL, a.GitURL)
	e.warn("Don't forget to update git remotes for all other local checkouts of the app.")
	return nil
}

func appsDestroy(e *Env, in *Input) error {
	name, err := positionalApp(in, "apps:destroy -a APP --confirm APP")
	if err != nil {
		return err
	}
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(name)}, nil); err != nil {
		return err
	}
	switch confirm := in.String("confirm"); {
	case confirm == "":
		return fmt.Errorf("This will delete %s including all add-ons.\nTo proceed, re-run this command with --confirm %s", appLabel(name), name)
	case confirm != name:
		return fmt.Errorf("Confirmation %s did not match %s. Aborted.", confirm, name)
	}
	return e.action(fmt.Sprintf("Destroying %s (including all add-ons)", appLabel(name)), func() (string, error) {
		return "", e.Do(Request{Method: "DELETE", Path: "/apps/" + escape(name)}, nil)
	})
}

// parallel runs fs at once and returns the first error, in argument order.
func parallel(fs ...func() error) error {
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	wg.Wait()
	return firstError(errs)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
