package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

func init() {
	register("maintenance", command{usage: "maintenance -a APP", help: "display the current maintenance status of app", app: appRequired, run: maintenanceShow})
	register("maintenance:on", command{usage: "maintenance:on -a APP", help: "put the app into maintenance mode", app: appRequired, run: maintenanceSet(true)})
	register("maintenance:off", command{usage: "maintenance:off -a APP", help: "take the app out of maintenance mode", app: appRequired, run: maintenanceSet(false)})

	register("features", command{
		usage: "features -a APP [--json]", help: "list available app features",
		flags: []flagDef{{Long: "json", Usage: "output in json format"}}, app: appRequired, run: featuresList,
	})
	register("features:info", command{
		usage: "features:info FEATURE -a APP [--json]", help: "display information about a feature",
		flags: []flagDef{{Long: "json", Usage: "output in json format"}}, app: appRequired, minArgs: 1, maxArgs: 1, run: featuresInfo,
	})
	register("features:enable", command{usage: "features:enable FEATURE -a APP", help: "enables an app feature", app: appRequired, minArgs: 1, maxArgs: 1, run: featuresSet(true)})
	register("features:disable", command{usage: "features:disable FEATURE -a APP", help: "disables an app feature", app: appRequired, minArgs: 1, maxArgs: 1, run: featuresSet(false)})
}

func maintenanceShow(e *Env, in *Input) error {
	var a app
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(in.App)}, &a); err != nil {
		return err
	}
	if a.Maintenance {
		fmt.Fprintln(e.Out, "on")
	} else {
		fmt.Fprintln(e.Out, "off")
	}
	return nil
}

func maintenanceSet(on bool) func(*Env, *Input) error {
	verb := "Disabling"
	if on {
		verb = "Enabling"
	}
	return func(e *Env, in *Input) error {
		return e.action(fmt.Sprintf("%s maintenance mode for %s", verb, appLabel(in.App)), func() (string, error) {
			return "", e.Do(Request{Method: "PATCH", Path: "/apps/" + escape(in.App), Body: map[string]bool{"maintenance": on}}, nil)
		})
	}
}

type feature struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	DocURL      string `json:"doc_url"`
	Enabled     bool   `json:"enabled"`
	State       string `json:"state"`
}

func featuresList(e *Env, in *Input) error {
	var raws []json.RawMessage
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(in.App) + "/features"}, &raws); err != nil {
		return err
	}
	type entry struct {
		raw json.RawMessage
		f   feature
	}
	var list []entry
	for _, r := range raws {
		var f feature
		if err := json.Unmarshal(r, &f); err != nil {
			return err
		}
		if f.State == "general" {
			list = append(list, entry{r, f})
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].f.Name < list[j].f.Name })
	if in.Bool("json") {
		out := make([]json.RawMessage, len(list))
		for i, x := range list {
			out[i] = x.raw
		}
		return printJSON(e.Out, out)
	}
	header(e.Out, "App Features "+in.App)
	longest := 0
	for _, x := range list {
		longest = max(longest, len(x.f.Name))
	}
	for _, x := range list {
		mark := "[ ]"
		if x.f.Enabled {
			mark = "[+]"
		}
		fmt.Fprintf(e.Out, "%s %s  %s\n", mark, x.f.Name+strings.Repeat(" ", longest-len(x.f.Name)), x.f.Description)
	}
	return nil
}

func featuresInfo(e *Env, in *Input) error {
	var raw json.RawMessage
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(in.App) + "/features/" + escape(in.Args[0])}, &raw); err != nil {
		return err
	}
	if in.Bool("json") {
		return printJSON(e.Out, raw)
	}
	var f feature
	if err := json.Unmarshal(raw, &f); err != nil {
		return err
	}
	header(e.Out, f.Name)
	styledObject(e.Out, []field{{"Description", f.Description}, {"Docs", f.DocURL}, {"Enabled", fmt.Sprint(f.Enabled)}})
	return nil
}

func featuresSet(enable bool) func(*Env, *Input) error {
	verb, state := "Disabling", "disabled"
	if enable {
		verb, state = "Enabling", "enabled"
	}
	return func(e *Env, in *Input) error {
		name := in.Args[0]
		path := "/apps/" + escape(in.App) + "/features/" + escape(name)
		return e.action(fmt.Sprintf("%s %s for %s", verb, name, appLabel(in.App)), func() (string, error) {
			var f feature
			if err := e.Do(Request{Method: "GET", Path: path}, &f); err != nil {
				return "", err
			}
			if f.Enabled == enable {
				return "", fmt.Errorf("%s is already %s.", name, state)
			}
			return "", e.Do(Request{Method: "PATCH", Path: path, Body: map[string]bool{"enabled": enable}}, nil)
		})
	}
}
