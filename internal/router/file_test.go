package router

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	for _, tc := range []struct {
		name, table, err string
	}{
		{"ok", `{"routes":[{"app":"a","hosts":["a.test"],"backends":[{"addr":"127.0.0.1:1"}],"balance":"p2c"}]}`, ""},
		{"bad json", `{"routes":[`, "unexpected EOF"},
		{"unknown field", `{"routes":[{"app":"a","hosts":["a.test"],"backend":[]}]}`, `unknown field "backend"`},
		{"no app", `{"routes":[{"hosts":["a.test"]}]}`, "route 0: no app name"},
		{"no hosts", `{"routes":[{"app":"a"}]}`, "route 0 (a): no hosts"},
		{"shared host", `{"routes":[{"app":"a","hosts":["x.test"]},{"app":"b","hosts":["X.test."]}]}`, "host x.test belongs to both a and b"},
		{"bad address", `{"routes":[{"app":"a","hosts":["a.test"],"backends":[{"addr":"nowhere"}]}]}`, `address "nowhere"`},
		{"bad balance", `{"routes":[{"app":"a","hosts":["a.test"],"balance":"round-robin"}]}`, `balance "round-robin"`},
		{"missing certificate", `{"routes":[],"certificates":[{"cert":"no.pem","key":"no.key"}]}`, "certificate no.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "table.json")
			os.WriteFile(p, []byte(tc.table), 0o600)
			f, _, err := ReadFile(p)
			if tc.err == "" {
				if err != nil || f.Routes[0].Backends[0].Name != "web.1" {
					t.Fatalf("%v %+v", err, f)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want one with %q", err, tc.err)
			}
		})
	}
}

func TestCertsBySNI(t *testing.T) {
	wild, _ := testCert(t, "*.skiff.test")
	exact, _ := testCert(t, "shop.example.com")
	var c Certs
	if _, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "x"}); err == nil {
		t.Error("a certificate from an empty set")
	}
	c.SetNamed([]NamedCert{{Cert: wild}, {Cert: exact}})
	for sni, want := range map[string]*tls.Certificate{
		"shop.example.com": exact, "SHOP.example.com.": exact, "app.skiff.test": wild, "other.test": wild, "": wild,
	} {
		if got, _ := c.GetCertificate(&tls.ClientHelloInfo{ServerName: sni}); got != want {
			t.Errorf("SNI %q: got %v", sni, got.Leaf.DNSNames)
		}
	}
}
