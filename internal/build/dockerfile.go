package build

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// instruction is one Dockerfile instruction as the parser gave it.
type instruction struct {
	cmd      string   // lower case: "run", "copy", …
	args     []string // the parser's arguments (one string for shell forms)
	json     bool     // exec (JSON array) form
	flags    []string // --flag=value, as written
	line     int
	original string
}

func (in *instruction) String() string { return in.original }

// errorf names the instruction's line in an error.
func (in *instruction) errorf(format string, a ...any) error {
	return fmt.Errorf("Dockerfile line %d: %s: %s", in.line, strings.ToUpper(in.cmd), fmt.Sprintf(format, a...))
}

// flag returns the value of --name=value and whether it was given.
func (in *instruction) flag(name string) (string, bool) {
	for _, f := range in.flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// stage is one FROM and the instructions after it.
type stage struct {
	from  *instruction
	name  string // AS name, lower case
	steps []*instruction
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM and the
// stages.
type dockerfile struct {
	globalArgs []*instruction
	stages     []*stage
	escape     rune
}

// supported lists the instructions a build runs or records, with the
// flags each accepts.
var supported = map[string][]string{
	"from":        {"platform"},
	"run":         nil,
	"copy":        {"from", "chown", "chmod", "link"},
	"add":         {"chown", "chmod", "link"},
	"env":         nil,
	"arg":         nil,
	"workdir":     nil,
	"user":        nil,
	"expose":      nil,
	"label":       nil,
	"cmd":         nil,
	"entrypoint":  nil,
	"shell":       nil,
	"healthcheck": {"interval", "timeout", "start-period", "start-interval", "retries"},
	"stopsignal":  nil,
	"maintainer":  nil,
}

// unsupported explains the instructions Skiff refuses.
var unsupported = map[string]string{
	"volume":  "volumes are not supported: a dyno's filesystem is ephemeral",
	"onbuild": "ONBUILD triggers are not supported",
}

// parseDockerfile parses b with BuildKit's parser and checks every
// instruction against what Skiff supports, naming the line of the first
// it cannot run.
func parseDockerfile(b []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		var le *parser.LocationError
		if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
			return nil, fmt.Errorf("Dockerfile line %d: %v", le.Locations[0][0].Start.Line, le.Unwrap())
		}
		return nil, fmt.Errorf("Dockerfile: %w", err)
	}
	df := &dockerfile{escape: '\\'}
	if res.EscapeToken != 0 {
		df.escape = res.EscapeToken
	}
	for _, n := range res.AST.Children {
		in := &instruction{cmd: strings.ToLower(n.Value), json: n.Attributes["json"], flags: n.Flags,
			line: n.StartLine, original: n.Original}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		if why, ok := unsupported[in.cmd]; ok {
			return nil, fmt.Errorf("Dockerfile line %d: %s is not supported: %s", in.line, strings.ToUpper(in.cmd), why)
		}
		flags, ok := supported[in.cmd]
		if !ok {
			return nil, fmt.Errorf("Dockerfile line %d: unknown instruction %s", in.line, strings.ToUpper(n.Value))
		}
		if len(n.Heredocs) > 0 {
			return nil, in.errorf("heredocs are not supported")
		}
		for _, f := range in.flags {
			name, _, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			if !strings.HasPrefix(f, "--") || !contains(flags, name) {
				return nil, in.errorf("flag %s is not supported", f)
			}
		}
		switch {
		case in.cmd == "from":
			if len(in.args) != 1 && !(len(in.args) == 3 && strings.EqualFold(in.args[1], "as")) {
				return nil, in.errorf("want FROM <image> [AS <name>]")
			}
			st := &stage{from: in}
			if len(in.args) == 3 {
				st.name = strings.ToLower(in.args[2])
			}
			df.stages = append(df.stages, st)
		case len(df.stages) == 0 && in.cmd == "arg":
			df.globalArgs = append(df.globalArgs, in)
		case len(df.stages) == 0:
			return nil, fmt.Errorf("Dockerfile line %d: %s before the first FROM (only ARG may come before FROM)", in.line, strings.ToUpper(in.cmd))
		default:
			st := df.stages[len(df.stages)-1]
			st.steps = append(st.steps, in)
		}
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("Dockerfile: no FROM instruction")
	}
	return df, nil
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
