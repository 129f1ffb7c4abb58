package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() {
	register("ps", command{
		usage: "ps [TYPE ...] -a APP", help: "list dynos for an app",
		flags: []flagDef{jsonFlag}, app: appRequired, maxArgs: -1, run: ps,
	}, "dyno", "dyno:list")
	procFlags := []flagDef{
		{Long: "process-type", Short: 'p', Value: true, Usage: "name of the process type to act on"},
		{Long: "dyno", Short: 'd', Value: true, Usage: "name of the dyno to act on (web.1)"},
	}
	register("ps:restart", command{
		usage: "ps:restart [DYNO] [-p TYPE | -d DYNO] -a APP", help: "restart an app's dynos: all, one process type, or one dyno",
		flags: procFlags, app: appRequired, maxArgs: 1, run: psRestart("Restarting"),
	}, "restart", "dyno:restart")
	register("ps:stop", command{
		usage: "ps:stop DYNO | -p TYPE | -d DYNO -a APP", help: "stop dynos (formation dynos are then started again)",
		flags: procFlags, app: appRequired, maxArgs: 1, run: psRestart("Stopping"),
	}, "ps:kill", "dyno:stop", "dyno:kill", "stop", "kill")
}

// dynoInfo is a dyno as the API returns it.
type dynoInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Size      string    `json:"size"`
	State     string    `json:"state"`
	Command   string    `json:"command"`
	UpdatedAt time.Time `json:"updated_at"`
	Release   struct {
		Version int `json:"version"`
	} `json:"release"`
}

func ps(e *Env, in *Input) error {
	var dynos []dynoInfo
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(in.App) + "/dynos"}, &dynos); err != nil {
		return err
	}
	if len(in.Args) > 0 {
		var keep []dynoInfo
		for _, t := range in.Args {
			found := false
			for _, d := range dynos {
				if d.Type == t {
					keep, found = append(keep, d), true
				}
			}
			if !found {
				return fmt.Errorf("No %s dynos on %s", t, appLabel(in.App))
			}
		}
		dynos = keep
	}
	if in.Bool("json") {
		return printJSON(e.Out, dynos)
	}
	if len(dynos) == 0 {
		fmt.Fprintf(e.Err, "No dynos on %s\n", appLabel(in.App))
		return nil
	}
	printDynos(e.Out, dynos, e.Now())
	return nil
}

// printDynos prints dynos as Heroku's `ps` does: one-off dynos first, then
// formation dynos grouped by command (in the order the API listed them),
// each group ordered by dyno number.
func printDynos(w io.Writer, dynos []dynoInfo, now time.Time) {
	byNumber := func(ds []dynoInfo) {
		sort.SliceStable(ds, func(i, j int) bool { return dynoNumber(ds[i].Name) < dynoNumber(ds[j].Name) })
	}
	var oneOffs []dynoInfo
	var commands []string
	groups := map[string][]dynoInfo{}
	for _, d := range dynos {
		if d.Type == "run" {
			oneOffs = append(oneOffs, d)
			continue
		}
		if _, ok := groups[d.Command]; !ok {
			commands = append(commands, d.Command)
		}
		groups[d.Command] = append(groups[d.Command], d)
	}
	byNumber(oneOffs)
	if len(oneOffs) > 0 {
		header(w, fmt.Sprintf("run: one-off processes (%d)", len(oneOffs)))
		for _, d := range oneOffs {
			fmt.Fprintf(w, "%s (%s): %s %s: %s\n", d.Name, d.Size, d.State, ago(d.UpdatedAt, now), d.Command)
		}
		fmt.Fprintln(w)
	}
	for _, c := range commands {
		g := groups[c]
		byNumber(g)
		header(w, fmt.Sprintf("%s (%s): %s (%d)", g[0].Type, g[0].Size, c, len(g)))
		for _, d := range g {
			fmt.Fprintf(w, "%s: %s %s\n", d.Name, d.State, ago(d.UpdatedAt, now))
		}
		fmt.Fprintln(w)
	}
}

func dynoNumber(name string) int {
	_, n, _ := strings.Cut(name, ".")
	v, _ := strconv.Atoi(n)
	return v
}

// psRestart restarts (or stops) all dynos, one process type (-p) or one
// dyno (-d, or the argument: a name with a dot is a dyno, else a type).
func psRestart(verb string) func(e *Env, in *Input) error {
	return func(e *Env, in *Input) error {
		typ, dyno := in.String("process-type"), in.String("dyno")
		if len(in.Args) == 1 {
			if strings.Contains(in.Args[0], ".") {
				dyno = in.Args[0]
			} else {
				typ = in.Args[0]
			}
		}
		path, what := "/apps/"+escape(in.App)+"/dynos", "dynos"
		switch {
		case dyno != "":
			path, what = path+"/"+escape(dyno), "dyno "+dyno
		case typ != "":
			path, what = "/apps/"+escape(in.App)+"/formations/"+escape(typ), typ+" dynos"
		case verb == "Stopping":
			return fmt.Errorf("Please specify a process type or dyno to stop.")
		}
		method := "DELETE"
		if verb == "Stopping" {
			method, path = "POST", path+"/actions/stop"
		}
		return e.action(fmt.Sprintf("%s %s on %s", verb, what, appLabel(in.App)), func() (string, error) {
			return "", e.Do(Request{Method: method, Path: path, Accept: "3.sdk"}, nil)
		})
	}
}

func init() {
	register("run:detached", command{
		usage: "run:detached COMMAND... -a APP", help: "run a one-off detached dyno; its output goes to the app's log",
		flags: []flagDef{
			{Long: "env", Short: 'e', Value: true, Usage: "environment variables for the dyno: KEY=value;KEY2=value2"},
			{Long: "size", Short: 's', Value: true, Usage: "dyno size"},
			{Long: "type", Value: true, Usage: "process type whose image to run"},
		},
		app: appRequired, minArgs: 1, maxArgs: -1, run: runDetached,
	})
}

func runDetached(e *Env, in *Input) error {
	env, err := parseEnvFlag(in.String("env"))
	if err != nil {
		return err
	}
	cmd := strings.Join(in.Args, " ")
	body := map[string]any{"command": cmd, "attach": false, "env": env}
	if s := in.String("size"); s != "" {
		body["size"] = s
	}
	if t := in.String("type"); t != "" {
		body["type"] = t
	}
	var d dynoInfo
	err = e.action(fmt.Sprintf("Running %s on %s", cmd, appLabel(in.App)), func() (string, error) {
		if err := e.Do(Request{Method: "POST", Path: "/apps/" + escape(in.App) + "/dynos", Body: body}, &d); err != nil {
			return "", err
		}
		return fmt.Sprintf("done, %s (%s)", d.Name, d.Size), nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "Run skiff logs --app %s --dyno %s to view the output.\n", in.App, d.Name)
	return nil
}
