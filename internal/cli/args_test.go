package cli

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	defs := []flagDef{
		appFlag,
		jsonFlag,
		{Long: "shell", Short: 's'},
		{Long: "num", Short: 'n', Value: true},
		{Long: "confirm", Short: 'c', Value: true},
	}
	tests := []struct {
		name  string
		args  []string
		app   string
		pos   []string
		bools []string
		vals  map[string]string
	}{
		{name: "flag after positionals", args: []string{"A=1", "B=2", "-a", "myapp"}, app: "myapp", pos: []string{"A=1", "B=2"}},
		{name: "flag before positionals", args: []string{"-a", "myapp", "A=1"}, app: "myapp", pos: []string{"A=1"}},
		{name: "flag between positionals", args: []string{"A=1", "--app", "myapp", "B=2"}, app: "myapp", pos: []string{"A=1", "B=2"}},
		{name: "long with equals", args: []string{"--app=myapp", "KEY"}, app: "myapp", pos: []string{"KEY"}},
		{name: "short glued value", args: []string{"-amyapp", "KEY"}, app: "myapp", pos: []string{"KEY"}},
		{name: "short with equals", args: []string{"-a=myapp"}, app: "myapp"},
		{name: "value that looks like a flag", args: []string{"--confirm", "-x"}, vals: map[string]string{"confirm": "-x"}},
		{name: "combined switches", args: []string{"-js", "-a", "x"}, app: "x", bools: []string{"json", "shell"}},
		{name: "switches then value flag", args: []string{"-jn5"}, bools: []string{"json"}, vals: map[string]string{"num": "5"}},
		{name: "double dash ends flags", args: []string{"-a", "x", "--", "-a", "--json"}, app: "x", pos: []string{"-a", "--json"}},
		{name: "lone dash is positional", args: []string{"-"}, pos: []string{"-"}},
		{name: "last value wins", args: []string{"-a", "one", "--app", "two"}, app: "two"},
		{name: "scale arguments with minus", args: []string{"worker-1", "web+2", "-a", "x"}, app: "x", pos: []string{"worker-1", "web+2"}},
		{name: "value containing equals", args: []string{"DATABASE_URL=postgres://u:p@h/db?x=1", "-a", "x"}, app: "x", pos: []string{"DATABASE_URL=postgres://u:p@h/db?x=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := parseArgs(tt.args, defs)
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.args, err)
			}
			if got := in.String("app"); got != tt.app {
				t.Errorf("app = %q, want %q", got, tt.app)
			}
			if !reflect.DeepEqual(in.Args, tt.pos) {
				t.Errorf("positionals = %q, want %q", in.Args, tt.pos)
			}
			for _, b := range tt.bools {
				if !in.Bool(b) {
					t.Errorf("--%s not set", b)
				}
			}
			for k, v := range tt.vals {
				if got := in.String(k); got != v {
					t.Errorf("--%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	defs := []flagDef{appFlag, jsonFlag}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "Nonexistent flag: --nope"},
		{[]string{"-z"}, "Nonexistent flag: -z"},
		{[]string{"-jz"}, "Nonexistent flag: -z"},
		{[]string{"A=1", "-a"}, "Flag -a expects a value"},
		{[]string{"--app"}, "Flag --app expects a value"},
		{[]string{"--json=yes"}, "Flag --json does not take a value"},
	}
	for _, tt := range tests {
		_, err := parseArgs(tt.args, defs)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseArgs(%q) = %v, want error %q", tt.args, err, tt.want)
		}
	}
}
