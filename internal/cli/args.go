package cli

import (
	"fmt"
	"strings"
)

// flagDef describes one flag a command accepts. As in Heroku's CLI, flags
// may come before, between or after the positional arguments:
// `skiff config:set A=1 -a myapp` and `skiff -a myapp config:set A=1`
// (the latter through Main) both work.
type flagDef struct {
	Long  string // name without "--"
	Short byte   // one-letter alias, 0 if none
	Value bool   // takes a value (else a boolean switch)
	Usage string
}

// Input is a command's parsed command line.
type Input struct {
	App  string   // the app the command acts on (-a, $SKIFF_APP, $HEROKU_APP)
	Args []string // positional arguments, in order
	vals map[string]string
	set  map[string]bool
}

// String returns a value flag's value ("" when not given).
func (in *Input) String(name string) string { return in.vals[name] }

// Bool reports whether a flag was given.
func (in *Input) Bool(name string) bool { return in.set[name] }

// flagError is a command-line mistake; Main adds a pointer to --help.
type flagError struct{ msg string }

func (e *flagError) Error() string { return e.msg }

func flagErrorf(format string, a ...any) error { return &flagError{fmt.Sprintf(format, a...)} }

// parseArgs splits args into flags (per defs) and positional arguments.
// It understands --name value, --name=value, -n value, -nvalue, combined
// one-letter switches (-jx) and "--" (everything after is positional).
// A lone "-" is positional.
func parseArgs(args []string, defs []flagDef) (*Input, error) {
	in := &Input{vals: map[string]string{}, set: map[string]bool{}}
	byLong := map[string]flagDef{}
	byShort := map[byte]flagDef{}
	for _, d := range defs {
		byLong[d.Long] = d
		if d.Short != 0 {
			byShort[d.Short] = d
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			in.Args = append(in.Args, args[i+1:]...)
			return in, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			d, ok := byLong[name]
			if !ok {
				return nil, flagErrorf("Nonexistent flag: --%s", name)
			}
			if d.Value && !hasVal {
				if i+1 >= len(args) {
					return nil, flagErrorf("Flag --%s expects a value", name)
				}
				i++
				val = args[i]
			} else if !d.Value && hasVal {
				return nil, flagErrorf("Flag --%s does not take a value", name)
			}
			in.vals[d.Long], in.set[d.Long] = val, true
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				d, ok := byShort[a[j]]
				if !ok {
					return nil, flagErrorf("Nonexistent flag: -%c", a[j])
				}
				if !d.Value {
					in.set[d.Long] = true
					continue
				}
				val := strings.TrimPrefix(a[j+1:], "=")
				if j+1 == len(a) {
					if i+1 >= len(args) {
						return nil, flagErrorf("Flag -%c expects a value", a[j])
					}
					i++
					val = args[i]
				}
				in.vals[d.Long], in.set[d.Long] = val, true
				break
			}
		default:
			in.Args = append(in.Args, a)
		}
	}
	return in, nil
}
