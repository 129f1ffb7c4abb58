package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

func init() {
	shellFlag := flagDef{Long: "shell", Short: 's', Usage: "output config vars in shell format"}
	register("config", command{
		usage: "config -a APP [--json | --shell]", help: "display the config vars for an app",
		flags: []flagDef{jsonFlag, shellFlag}, app: appRequired, run: configShow,
	}, "config:list")
	register("config:get", command{
		usage: "config:get KEY... -a APP", help: "display a single config value for an app",
		flags: []flagDef{jsonFlag, shellFlag}, app: appRequired, minArgs: 1, maxArgs: -1, run: configGet,
	})
	register("config:set", command{
		usage: "config:set KEY1=VALUE1 [KEY2=VALUE2 ...] -a APP", help: "set one or more config vars",
		app: appRequired, maxArgs: -1, run: configSet,
	}, "config:add")
	register("config:unset", command{
		usage: "config:unset KEY1 [KEY2 ...] -a APP", help: "unset one or more config vars",
		app: appRequired, maxArgs: -1, run: configUnset,
	}, "config:remove")
}

// configVar is one entry of a config map, in the order the API sent it.
// Value nil means "remove" in a PATCH.
type configVar struct {
	Key   string
	Value *string
}

// configVars is a config map that keeps its order, both ways: the API
// names keys in release descriptions in the order they were sent.
type configVars []configVar

func (c configVars) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, v := range c {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(v.Key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		val, err := json.Marshal(v.Value)
		if err != nil {
			return nil, err
		}
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (c *configVars) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("config vars: expected a JSON object")
	}
	*c = nil
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		var v *string
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*c = append(*c, configVar{Key: t.(string), Value: v})
	}
	_, err := dec.Token()
	return err
}

func (c configVars) get(key string) (string, bool) {
	for _, v := range c {
		if v.Key == key && v.Value != nil {
			return *v.Value, true
		}
	}
	return "", false
}

func (c configVars) fields() []field {
	out := make([]field, 0, len(c))
	for _, v := range c {
		if v.Value != nil {
			out = append(out, field{v.Key, *v.Value})
		}
	}
	return out
}

var shellSpecial = regexp.MustCompile(`["\s#!$&'()*,:;<=>?@\[\\\]^` + "`" + `{|}]`)

// shellQuote quotes a value for `--shell` output as Heroku's CLI does:
// single quotes when they suffice, else double quotes with escapes.
func shellQuote(s string) string {
	if !shellSpecial.MatchString(s) {
		return s
	}
	if !strings.ContainsAny(s, "'\n") {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\', '$', '`', '!':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (e *Env) config(app string) (configVars, json.RawMessage, error) {
	var raw json.RawMessage
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(app) + "/config-vars"}, &raw); err != nil {
		return nil, nil, err
	}
	var c configVars
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, nil, err
	}
	return c, raw, nil
}

func configShow(e *Env, in *Input) error {
	c, raw, err := e.config(in.App)
	if err != nil {
		return err
	}
	switch {
	case in.Bool("shell"):
		for _, v := range c {
			if v.Value != nil {
				fmt.Fprintf(e.Out, "%s=%s\n", v.Key, shellQuote(*v.Value))
			}
		}
	case in.Bool("json"):
		return printJSON(e.Out, raw)
	default:
		header(e.Out, in.App+" Config Vars")
		styledObject(e.Out, c.fields())
	}
	return nil
}

func configGet(e *Env, in *Input) error {
	c, _, err := e.config(in.App)
	if err != nil {
		return err
	}
	if in.Bool("json") {
		type result struct {
			Key   string  `json:"key"`
			Value *string `json:"value"`
		}
		var results []result
		for _, k := range in.Args {
			r := result{Key: k}
			if v, ok := c.get(k); ok {
				r.Value = &v
			}
			results = append(results, r)
		}
		if len(results) == 1 {
			return printJSON(e.Out, results[0])
		}
		return printJSON(e.Out, results)
	}
	for _, k := range in.Args {
		v, _ := c.get(k)
		if in.Bool("shell") {
			fmt.Fprintf(e.Out, "%s=%s\n", k, shellQuote(v))
		} else {
			fmt.Fprintln(e.Out, v)
		}
	}
	return nil
}

// parseConfigArgs reads KEY=VALUE arguments. A later value for a key
// replaces an earlier one; keys keep the order they first appeared in.
func parseConfigArgs(args []string) (configVars, []string, error) {
	var vars configVars
	at := map[string]int{}
	names := make([]string, 0, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, nil, fmt.Errorf("%s is invalid. Must be in the format FOO=bar.", a)
		}
		names = append(names, k)
		if i, seen := at[k]; seen {
			vars[i].Value = &v
			continue
		}
		at[k] = len(vars)
		vars = append(vars, configVar{Key: k, Value: &v})
	}
	return vars, names, nil
}

// latestRelease is the app's newest release version, as Heroku's CLI
// fetches it after a config change.
func (e *Env) latestRelease(app string) (int, error) {
	var rs []struct {
		Version int `json:"version"`
	}
	err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(app) + "/releases", Range: "version ..; order=desc,max=1", Partial: true}, &rs)
	if err != nil {
		return 0, err
	}
	if len(rs) == 0 {
		return 0, fmt.Errorf("%s has no releases", app)
	}
	return rs[0].Version, nil
}

func configSet(e *Env, in *Input) error {
	if len(in.Args) == 0 {
		return fmt.Errorf("Usage: skiff config:set KEY1=VALUE1 [KEY2=VALUE2 ...]\nMust specify KEY and VALUE to set.")
	}
	vars, names, err := parseConfigArgs(in.Args)
	if err != nil {
		return err
	}
	var result configVars
	err = e.action(fmt.Sprintf("Setting %s and restarting %s", joinNames(names), appLabel(in.App)), func() (string, error) {
		if err := e.Do(Request{Method: "PATCH", Path: "/apps/" + escape(in.App) + "/config-vars", Body: vars}, &result); err != nil {
			return "", err
		}
		v, err := e.latestRelease(in.App)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("done, v%d", v), nil
	})
	if err != nil {
		return err
	}
	var shown []field
	for _, v := range result {
		if sent, ok := vars.get(v.Key); ok && sent != "" && v.Value != nil {
			shown = append(shown, field{v.Key, *v.Value})
		}
	}
	styledObject(e.Out, shown)
	return nil
}

func configUnset(e *Env, in *Input) error {
	if len(in.Args) == 0 {
		return fmt.Errorf("Usage: skiff config:unset KEY1 [KEY2 ...]\nMust specify KEY to unset.")
	}
	var vars configVars
	for _, k := range in.Args {
		vars = append(vars, configVar{Key: k})
	}
	return e.action(fmt.Sprintf("Unsetting %s and restarting %s", joinNames(in.Args), appLabel(in.App)), func() (string, error) {
		if err := e.Do(Request{Method: "PATCH", Path: "/apps/" + escape(in.App) + "/config-vars", Body: vars}, nil); err != nil {
			return "", err
		}
		v, err := e.latestRelease(in.App)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("done, v%d", v), nil
	})
}
