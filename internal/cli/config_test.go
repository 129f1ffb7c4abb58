package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseConfigArgs(t *testing.T) {
	vars, names, err := parseConfigArgs([]string{"B=2", "A=x=y", "EMPTY=", "B=3"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(vars)
	if got, want := string(b), `{"B":"3","A":"x=y","EMPTY":""}`; got != want {
		t.Errorf("body = %s, want %s (keys in the order given, later values win)", got, want)
	}
	if got, want := strings.Join(names, ", "), "B, A, EMPTY, B"; got != want {
		t.Errorf("names = %q, want %q", got, want)
	}
	if _, _, err := parseConfigArgs([]string{"A=1", "NOEQUALS"}); err == nil || err.Error() != "NOEQUALS is invalid. Must be in the format FOO=bar." {
		t.Errorf("invalid argument: err = %v", err)
	}
}

func TestConfigVarsJSON(t *testing.T) {
	unset := configVars{{Key: "Z"}, {Key: "A"}}
	b, err := json.Marshal(unset)
	if err != nil || string(b) != `{"Z":null,"A":null}` {
		t.Errorf("marshal = %s, %v", b, err)
	}
	var c configVars
	if err := json.Unmarshal([]byte(`{"ZED":"1","ALPHA":"two words","N":null}`), &c); err != nil {
		t.Fatal(err)
	}
	if len(c) != 3 || c[0].Key != "ZED" || c[1].Key != "ALPHA" || *c[1].Value != "two words" || c[2].Value != nil {
		t.Errorf("unmarshal = %+v", c)
	}
	if v, ok := c.get("ALPHA"); !ok || v != "two words" {
		t.Errorf("get ALPHA = %q, %v", v, ok)
	}
	if _, ok := c.get("N"); ok {
		t.Error("get of a null value reports it present")
	}
	if err := json.Unmarshal([]byte(`["not", "an object"]`), &c); err == nil {
		t.Error("unmarshal of an array succeeded")
	}
}
