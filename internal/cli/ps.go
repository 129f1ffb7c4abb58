package cli

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func init() {
	register("ps:scale", command{
		usage: "ps:scale [TYPE=N[:SIZE] | TYPE+N | TYPE-N ...] -a APP",
		help:  "scale dyno quantity up or down; without arguments, show the formation in a form ps:scale accepts",
		app:   appRequired, maxArgs: -1, run: psScale,
	}, "scale", "dyno:scale")
	register("ps:type", command{
		usage: "ps:type [SIZE | TYPE=SIZE ...] -a APP", help: "manage dyno sizes: set them, then show the formation",
		app: appRequired, maxArgs: -1, run: psType,
	}, "ps:resize", "dyno:type", "dyno:resize", "resize")
}

// formation is one process type's entry as the API returns it.
type formation struct {
	Type     string `json:"type"`
	Quantity int    `json:"quantity"`
	Size     string `json:"size"`
	Command  string `json:"command"`
}

// scaleChange is one entry of a formation batch update. Quantity is sent
// as a string so relative changes ("+1", "-2") pass through unchanged.
type scaleChange struct {
	Type     string `json:"type"`
	Quantity string `json:"quantity,omitempty"`
	Size     string `json:"size,omitempty"`
}

// scaleArg is Heroku's ps:scale argument grammar.
var scaleArg = regexp.MustCompile(`^([\w-]+)([=+-]\d+)(?::([\w-]+))?$`)

// parseScaleArgs turns ps:scale arguments (web=2, worker+1, web=3:Standard-2X)
// into formation updates.
func parseScaleArgs(args []string) ([]scaleChange, error) {
	var out []scaleChange
	for _, a := range args {
		m := scaleArg.FindStringSubmatch(a)
		if m == nil {
			return nil, fmt.Errorf("Invalid argument %q: expected TYPE=N, TYPE+N or TYPE-N, optionally followed by :SIZE (e.g. web=2:Standard-2X).", a)
		}
		q := m[2]
		if q[0] == '=' {
			q = q[1:]
		}
		out = append(out, scaleChange{Type: m[1], Quantity: q, Size: strings.Replace(m[3], "Shield-", "Private-", 1)})
	}
	return out, nil
}

func (e *Env) formation(app string) ([]formation, error) {
	var fs []formation
	err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(app) + "/formation"}, &fs)
	return fs, err
}

func noProcessTypes(app string) error {
	return fmt.Errorf("No process types on %s.\nUpload a Procfile to add process types.", appLabel(app))
}

// formationLine is the formation as `ps:scale` without arguments prints
// it: "web=1:Standard-1X worker=0:Standard-1X".
func formationLine(fs []formation) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%s=%d:%s", f.Type, f.Quantity, f.Size)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func psScale(e *Env, in *Input) error {
	changes, err := parseScaleArgs(in.Args)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		fs, err := e.formation(in.App)
		if err != nil {
			return err
		}
		if len(fs) == 0 {
			return noProcessTypes(in.App)
		}
		fmt.Fprintln(e.Out, formationLine(fs))
		return nil
	}
	return e.action("Scaling dynos", func() (string, error) {
		var fs []formation
		err := e.Do(Request{Method: "PATCH", Path: "/apps/" + escape(in.App) + "/formation", Body: map[string]any{"updates": changes}}, &fs)
		if err != nil {
			return "", err
		}
		var running []string
		for _, f := range fs {
			for _, c := range changes {
				if c.Type == f.Type {
					running = append(running, fmt.Sprintf("%s at %d:%s", f.Type, f.Quantity, f.Size))
					break
				}
			}
		}
		return "done, now running " + strings.Join(running, ", "), nil
	})
}

var typeSizeArg = regexp.MustCompile(`^([a-zA-Z0-9_]+)=([\w-]+)$`)

// parseTypeArgs reads ps:type arguments against the current formation:
// either one SIZE for every process type, or TYPE=SIZE pairs.
func parseTypeArgs(args []string, fs []formation) ([]scaleChange, error) {
	if len(args) == 0 {
		return nil, nil
	}
	types := make([]string, len(fs))
	known := map[string]bool{}
	for i, f := range fs {
		types[i] = f.Type
		known[f.Type] = true
	}
	var out []scaleChange
	pairs := false
	for _, a := range args {
		pairs = pairs || strings.Contains(a, "=")
	}
	if !pairs {
		for _, t := range types {
			out = append(out, scaleChange{Type: t, Size: args[0]})
		}
		return out, nil
	}
	for _, a := range args {
		m := typeSizeArg.FindStringSubmatch(a)
		if m == nil || !known[m[1]] {
			t := ""
			if m != nil {
				t = m[1]
			} else {
				t, _, _ = strings.Cut(a, "=")
			}
			return nil, fmt.Errorf("Type %s not found in process formation.\nTypes: %s", t, strings.Join(types, ", "))
		}
		out = append(out, scaleChange{Type: m[1], Size: m[2]})
	}
	return out, nil
}

func psType(e *Env, in *Input) error {
	if len(in.Args) > 0 {
		fs, err := e.formation(in.App)
		if err != nil {
			return err
		}
		changes, err := parseTypeArgs(in.Args, fs)
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			err := e.action("Scaling dynos on "+appLabel(in.App), func() (string, error) {
				return "", e.Do(Request{Method: "PATCH", Path: "/apps/" + escape(in.App) + "/formation", Body: map[string]any{"updates": changes}}, nil)
			})
			if err != nil {
				return err
			}
		}
	}
	fs, err := e.formation(in.App)
	if err != nil {
		return err
	}
	if len(fs) == 0 {
		return noProcessTypes(in.App)
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Type < fs[j].Type })
	var sizes []string
	totals := map[string]int{}
	rows := make([][]string, len(fs))
	for i, f := range fs {
		if _, ok := totals[f.Size]; !ok {
			sizes = append(sizes, f.Size)
		}
		totals[f.Size] += f.Quantity
		rows[i] = []string{f.Type, f.Size, strconv.Itoa(f.Quantity)}
	}
	header(e.Out, "Process Types")
	table(e.Out, []string{"type", "size", "qty"}, rows)
	fmt.Fprintln(e.Out)
	header(e.Out, "Dyno Totals")
	totalRows := make([][]string, len(sizes))
	for i, s := range sizes {
		totalRows[i] = []string{s, strconv.Itoa(totals[s])}
	}
	table(e.Out, []string{"type", "total"}, totalRows)
	return nil
}
