package cli

import (
	"encoding/json"
	"fmt"
)

func init() {
	register("drains", command{
		usage: "drains -a APP [--json]", help: "display the log drains of an app",
		flags: []flagDef{{Long: "json", Usage: "output in json format"}}, app: appRequired, run: drainsList,
	})
	register("drains:add", command{usage: "drains:add URL -a APP", help: "adds a log drain to an app (syslog://, syslog+tls:// or https://)", app: appRequired, minArgs: 1, maxArgs: 1, run: drainsAdd})
	register("drains:remove", command{usage: "drains:remove URL_OR_TOKEN -a APP", help: "removes a log drain from an app", app: appRequired, minArgs: 1, maxArgs: 1, run: drainsRemove})
}

type logDrain struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

func drainsList(e *Env, in *Input) error {
	var raw json.RawMessage
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(in.App) + "/log-drains"}, &raw); err != nil {
		return err
	}
	if in.Bool("json") {
		return printJSON(e.Out, raw)
	}
	var ds []logDrain
	if err := json.Unmarshal(raw, &ds); err != nil {
		return err
	}
	if len(ds) == 0 {
		fmt.Fprintf(e.Out, "%s has no drains\n", in.App)
		return nil
	}
	header(e.Out, "Drains")
	for _, d := range ds {
		fmt.Fprintf(e.Out, "%s (%s)\n", d.URL, d.Token)
	}
	return nil
}

func drainsAdd(e *Env, in *Input) error {
	var d logDrain
	if err := e.Do(Request{Method: "POST", Path: "/apps/" + escape(in.App) + "/log-drains", Body: map[string]string{"url": in.Args[0]}}, &d); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "Successfully added drain %s (%s)\n", d.URL, d.Token)
	return nil
}

func drainsRemove(e *Env, in *Input) error {
	var d logDrain
	if err := e.Do(Request{Method: "DELETE", Path: "/apps/" + escape(in.App) + "/log-drains/" + escape(in.Args[0])}, &d); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "Successfully removed drain %s\n", d.URL)
	return nil
}
