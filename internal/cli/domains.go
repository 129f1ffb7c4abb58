package cli

import (
	"fmt"
	"strings"
)

func init() {
	register("domains", command{usage: "domains -a APP [--json]", help: "list domains for an app",
		flags: []flagDef{{Long: "json", Usage: "output in json format"}}, app: appRequired, run: domainsList})
	register("domains:add", command{usage: "domains:add HOSTNAME -a APP [--cert NAME]", help: "add a domain to an app",
		flags: []flagDef{{Long: "cert", Value: true, Usage: "the name of the SSL certificate to serve the domain with"}},
		app:   appRequired, minArgs: 1, maxArgs: 1, run: domainsAdd})
	register("domains:remove", command{usage: "domains:remove HOSTNAME -a APP", help: "remove a domain from an app",
		app: appRequired, minArgs: 1, maxArgs: 1, run: domainsRemove})
}

type domain struct {
	Hostname        string  `json:"hostname"`
	Kind            string  `json:"kind"`
	CNAME           *string `json:"cname"`
	Status          string  `json:"status"`
	ACMStatus       *string `json:"acm_status"`
	ACMStatusReason *string `json:"acm_status_reason"`
	SNIEndpoint     *struct {
		Name string `json:"name"`
	} `json:"sni_endpoint"`
}

// recordType is the DNS record a domain needs: an apex (two labels) cannot
// be a CNAME.
func recordType(host string) string {
	if !strings.HasPrefix(host, "*.") && strings.Count(host, ".") == 1 {
		return "ALIAS or ANAME"
	}
	return "CNAME"
}

func domainsList(e *Env, in *Input) error {
	var ds []domain
	path := "/apps/" + escape(in.App) + "/domains"
	if in.Bool("json") {
		var raw any
		if err := e.Do(Request{Method: "GET", Path: path}, &raw); err != nil {
			return err
		}
		return printJSON(e.Out, raw)
	}
	if err := e.Do(Request{Method: "GET", Path: path}, &ds); err != nil {
		return err
	}
	header(e.Out, in.App+" Heroku Domain")
	var rows [][]string
	for _, d := range ds {
		if d.Kind == "heroku" {
			fmt.Fprintln(e.Out, d.Hostname)
			continue
		}
		sni := ""
		if d.SNIEndpoint != nil {
			sni = d.SNIEndpoint.Name
		}
		rows = append(rows, []string{d.Hostname, recordType(d.Hostname), deref(d.CNAME), sni})
	}
	if len(rows) > 0 {
		fmt.Fprintln(e.Out)
		header(e.Out, in.App+" Custom Domains")
		table(e.Out, []string{"Domain Name", "DNS Record Type", "DNS Target", "SNI Endpoint"}, rows)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func domainsAdd(e *Env, in *Input) error {
	host := in.Args[0]
	body := map[string]any{"hostname": host, "sni_endpoint": nil}
	if c := in.String("cert"); c != "" {
		body["sni_endpoint"] = c
	}
	var d domain
	err := e.action(fmt.Sprintf("Adding %s to %s", host, appLabel(in.App)), func() (string, error) {
		return "", e.Do(Request{Method: "POST", Path: "/apps/" + escape(in.App) + "/domains", Body: body}, &d)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "Configure your app's DNS provider to point %s (%s record) to the DNS Target %s.\n", d.Hostname, recordType(d.Hostname), deref(d.CNAME))
	return nil
}

func domainsRemove(e *Env, in *Input) error {
	host := in.Args[0]
	return e.action(fmt.Sprintf("Removing %s from %s", host, appLabel(in.App)), func() (string, error) {
		return "", e.Do(Request{Method: "DELETE", Path: "/apps/" + escape(in.App) + "/domains/" + escape(host)}, nil)
	})
}
