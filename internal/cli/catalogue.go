package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

func init() {
	register("regions", command{
		usage: "regions [--json]", help: "list available regions for deployment",
		flags: []flagDef{{Long: "json", Usage: "output in json format"}}, run: regionsList,
	})
	register("stacks", command{
		usage: "stacks [-a APP] [--json]", help: "list the available stacks (with -a, marking the app's)",
		flags: []flagDef{{Long: "json", Usage: "output in json format"}}, app: appOptional, run: stacksList,
	}, "stack", "apps:stacks")
	register("dyno-sizes", command{
		usage: "dyno-sizes [--all] [--json]", help: "list the dyno sizes and what each gets",
		flags: []flagDef{{Long: "all", Usage: "include sizes only Private Spaces offer"}, {Long: "json", Usage: "output in json format"}},
		run:   dynoSizes,
	}, "ps:sizes")
}

func regionsList(e *Env, in *Input) error {
	var raws []json.RawMessage
	if err := e.Do(Request{Method: "GET", Path: "/regions"}, &raws); err != nil {
		return err
	}
	type region struct {
		Name           string `json:"name"`
		Description    string `json:"description"`
		PrivateCapable bool   `json:"private_capable"`
	}
	rs := make([]region, len(raws))
	idx := make([]int, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &rs[i]); err != nil {
			return err
		}
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := rs[idx[a]], rs[idx[b]]
		if x.PrivateCapable != y.PrivateCapable {
			return !x.PrivateCapable
		}
		return x.Name < y.Name
	})
	if in.Bool("json") {
		out := make([]json.RawMessage, len(idx))
		for i, j := range idx {
			out[i] = raws[j]
		}
		return printJSON(e.Out, out)
	}
	rows := make([][]string, len(idx))
	for i, j := range idx {
		runtime := "Common Runtime"
		if rs[j].PrivateCapable {
			runtime = "Private Spaces"
		}
		rows[i] = []string{rs[j].Name, rs[j].Description, runtime}
	}
	table(e.Out, []string{"ID", "Location", "Runtime"}, rows)
	return nil
}

func stacksList(e *Env, in *Input) error {
	var raws []json.RawMessage
	if err := e.Do(Request{Method: "GET", Path: "/stacks"}, &raws); err != nil {
		return err
	}
	if in.Bool("json") {
		return printJSON(e.Out, raws)
	}
	type stack struct {
		Name    string `json:"name"`
		State   string `json:"state"`
		Default bool   `json:"default"`
	}
	stacks := make([]stack, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &stacks[i]); err != nil {
			return err
		}
	}
	sort.SliceStable(stacks, func(i, j int) bool { return stacks[i].Name < stacks[j].Name })
	if in.App == "" {
		rows := make([][]string, len(stacks))
		for i, s := range stacks {
			def := ""
			if s.Default {
				def = "yes"
			}
			rows[i] = []string{s.Name, s.State, def}
		}
		table(e.Out, []string{"name", "state", "default"}, rows)
		return nil
	}
	var a app
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(in.App)}, &a); err != nil {
		return err
	}
	header(e.Out, a.Name+" Available Stacks")
	for _, s := range stacks {
		switch s.Name {
		case a.Stack.Name:
			fmt.Fprintln(e.Out, "* "+s.Name)
		case a.BuildStack.Name:
			fmt.Fprintf(e.Out, "  %s (active on next deploy)\n", s.Name)
		default:
			fmt.Fprintln(e.Out, "  "+s.Name)
		}
	}
	return nil
}

func dynoSizes(e *Env, in *Input) error {
	var raws []json.RawMessage
	if err := e.Do(Request{Method: "GET", Path: "/dyno-sizes"}, &raws); err != nil {
		return err
	}
	type size struct {
		Name         string  `json:"name"`
		Memory       float64 `json:"memory"`
		Compute      int     `json:"compute"`
		CPUShare     float64 `json:"cpu_share"`
		ProcessLimit int     `json:"process_limit"`
		Dedicated    bool    `json:"dedicated"`
		PrivateOnly  bool    `json:"private_space_only"`
	}
	var out []json.RawMessage
	var rows [][]string
	for _, r := range raws {
		var s size
		if err := json.Unmarshal(r, &s); err != nil {
			return err
		}
		if s.PrivateOnly && !in.Bool("all") {
			continue
		}
		out = append(out, r)
		dedicated := "no"
		if s.Dedicated {
			dedicated = "yes"
		}
		rows = append(rows, []string{s.Name, formatMemory(s.Memory), strconv.FormatFloat(s.CPUShare, 'f', -1, 64),
			strconv.Itoa(s.Compute) + "x", strconv.Itoa(s.ProcessLimit), dedicated})
	}
	if in.Bool("json") {
		if out == nil {
			out = []json.RawMessage{}
		}
		return printJSON(e.Out, out)
	}
	table(e.Out, []string{"name", "memory", "cpu share", "compute", "process limit", "dedicated"}, rows)
	return nil
}

// formatMemory shows a size's memory (in GB, as the API gives it) as
// "512 MB" or "2.5 GB".
func formatMemory(gb float64) string {
	if gb < 1 {
		return fmt.Sprintf("%d MB", int(gb*1024+0.5))
	}
	return strconv.FormatFloat(gb, 'f', -1, 64) + " GB"
}
