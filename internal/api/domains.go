package api

import (
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/skiffhq/skiff/internal/platform"
)

type domainJSON struct {
	ACMStatus       *string `json:"acm_status"`
	ACMStatusReason *string `json:"acm_status_reason"`
	App             named   `json:"app"`
	CNAME           *string `json:"cname"`
	CreatedAt       string  `json:"created_at"`
	Hostname        string  `json:"hostname"`
	ID              string  `json:"id"`
	Kind            string  `json:"kind"`
	SNIEndpoint     *named  `json:"sni_endpoint"`
	Status          string  `json:"status"`
	UpdatedAt       string  `json:"updated_at"`
}

func domainToJSON(d *platform.Domain) domainJSON {
	j := domainJSON{ACMStatus: d.ACMStatus, ACMStatusReason: d.ACMStatusReason, App: named{ID: d.AppID, Name: d.AppName},
		CreatedAt: timeJSON(d.CreatedAt), Hostname: d.Hostname, ID: d.ID, Kind: platform.KindCustom, Status: d.Status,
		UpdatedAt: timeJSON(d.UpdatedAt)}
	if platform.IsDefault(d) {
		j.Kind = platform.KindHeroku
	} else {
		cname := d.CNAME
		j.CNAME = &cname
	}
	if d.SNIEndpointID != nil && d.SNIEndpointName != nil {
		j.SNIEndpoint = &named{ID: *d.SNIEndpointID, Name: *d.SNIEndpointName}
	}
	return j
}

// sniBody is the body of POST /domains and PATCH /domains/{domain}: the
// endpoint may be sent as a name or id string, or as null.
type sniBody struct {
	Hostname    *string         `json:"hostname"`
	SNIEndpoint json.RawMessage `json:"sni_endpoint"`
}

// endpoint reads sni_endpoint: nil for absent or null, else the name or id
// (a string, or an object with a name or id).
func (b sniBody) endpoint() (*string, error) {
	raw := strings.TrimSpace(string(b.SNIEndpoint))
	if raw == "" || raw == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(b.SNIEndpoint, &s) == nil {
		return &s, nil
	}
	var o struct{ ID, Name string }
	if json.Unmarshal(b.SNIEndpoint, &o) == nil && (o.ID != "" || o.Name != "") {
		if o.ID != "" {
			return &o.ID, nil
		}
		return &o.Name, nil
	}
	return nil, invalidParams("Invalid type for sni_endpoint: expected a name or id string, or null.")
}

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request, c *call) error {
	_, ds, err := s.p.Domains(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	out := make([]domainJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, domainToJSON(d))
	}
	w.Header().Set("Accept-Ranges", "id, hostname")
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getDomain(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.p.Domain(r.Context(), c.account, r.PathValue("app"), r.PathValue("domain"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, domainToJSON(d))
	return nil
}

func (s *Server) createDomain(w http.ResponseWriter, r *http.Request, c *call) error {
	var body sniBody
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Hostname == nil {
		return invalidParams("Missing required params: hostname.")
	}
	sni, err := body.endpoint()
	if err != nil {
		return err
	}
	d, err := s.p.CreateDomain(r.Context(), c.account, r.PathValue("app"), *body.Hostname, sni)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, domainToJSON(d))
	return nil
}

func (s *Server) updateDomain(w http.ResponseWriter, r *http.Request, c *call) error {
	var body sniBody
	if err := decode(r, &body); err != nil {
		return err
	}
	if len(body.SNIEndpoint) == 0 {
		return invalidParams("Missing required params: sni_endpoint (an SNI endpoint's name or id, or null for none).")
	}
	sni, err := body.endpoint()
	if err != nil {
		return err
	}
	d, err := s.p.SetDomainSNIEndpoint(r.Context(), c.account, r.PathValue("app"), r.PathValue("domain"), sni)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, domainToJSON(d))
	return nil
}

func (s *Server) deleteDomain(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.p.DeleteDomain(r.Context(), c.account, r.PathValue("app"), r.PathValue("domain"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, domainToJSON(d))
	return nil
}

// ---- SNI endpoints ----

type sslCertJSON struct {
	CASigned    bool     `json:"ca_signed?"`
	CertDomains []string `json:"cert_domains"`
	ExpiresAt   string   `json:"expires_at"`
	Issuer      string   `json:"issuer"`
	SelfSigned  bool     `json:"self_signed?"`
	StartsAt    string   `json:"starts_at"`
	Subject     string   `json:"subject"`
	ID          string   `json:"id"`
	ACM         bool     `json:"acm"`
}

type sniEndpointJSON struct {
	App              named       `json:"app"`
	CertificateChain string      `json:"certificate_chain"`
	CreatedAt        string      `json:"created_at"`
	DisplayName      *string     `json:"display_name"`
	Domains          []string    `json:"domains"`
	ID               string      `json:"id"`
	Name             string      `json:"name"`
	SSLCert          sslCertJSON `json:"ssl_cert"`
	UpdatedAt        string      `json:"updated_at"`
}

func (s *Server) sniToJSON(e *platform.SNIEndpoint, served []*platform.Domain) sniEndpointJSON {
	j := sniEndpointJSON{App: named{ID: e.AppID, Name: e.AppName}, CertificateChain: e.CertificateChain,
		CreatedAt: timeJSON(e.CreatedAt), Domains: []string{}, ID: e.ID, Name: e.Name, UpdatedAt: timeJSON(e.UpdatedAt)}
	for _, d := range served {
		j.Domains = append(j.Domains, d.ID)
	}
	j.SSLCert.ID, j.SSLCert.CertDomains = e.ID, []string{}
	// The chain was valid when last uploaded; parse it as of then, so that
	// an expired certificate still shows what it is.
	if c, err := platform.ParseCertificate(e.CertificateChain, e.PrivateKey, e.UpdatedAt); err == nil {
		j.SSLCert = sslCertJSON{CASigned: c.CASigned, CertDomains: c.Domains, ExpiresAt: timeJSON(c.Leaf.NotAfter),
			Issuer: dn(c.Leaf.Issuer), SelfSigned: c.SelfSigned, StartsAt: timeJSON(c.Leaf.NotBefore),
			Subject: dn(c.Leaf.Subject), ID: e.ID}
	}
	return j
}

// dn formats a distinguished name as Heroku shows it, OpenSSL's one-line
// form: /C=US/O=Example/CN=www.example.com.
func dn(n pkix.Name) string {
	var b strings.Builder
	add := func(k string, vs []string) {
		for _, v := range vs {
			b.WriteString("/" + k + "=" + v)
		}
	}
	add("C", n.Country)
	add("ST", n.Province)
	add("L", n.Locality)
	add("O", n.Organization)
	add("OU", n.OrganizationalUnit)
	if n.CommonName != "" {
		add("CN", []string{n.CommonName})
	}
	return b.String()
}

func (s *Server) listSNIEndpoints(w http.ResponseWriter, r *http.Request, c *call) error {
	es, served, err := s.p.SNIEndpoints(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	out := make([]sniEndpointJSON, 0, len(es))
	for _, e := range es {
		out = append(out, s.sniToJSON(e, served[e.ID]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getSNIEndpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	e, served, err := s.p.SNIEndpoint(r.Context(), c.account, r.PathValue("app"), r.PathValue("endpoint"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.sniToJSON(e, served))
	return nil
}

type certBody struct {
	CertificateChain *string `json:"certificate_chain"`
	PrivateKey       *string `json:"private_key"`
}

func (b certBody) check() error {
	var missing []string
	if b.CertificateChain == nil {
		missing = append(missing, "certificate_chain")
	}
	if b.PrivateKey == nil {
		missing = append(missing, "private_key")
	}
	if len(missing) > 0 {
		return invalidParams("Missing required params: " + strings.Join(missing, ", ") + ".")
	}
	return nil
}

func (s *Server) createSNIEndpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	var body certBody
	if err := decode(r, &body); err != nil {
		return err
	}
	if err := body.check(); err != nil {
		return err
	}
	e, err := s.p.CreateSNIEndpoint(r.Context(), c.account, r.PathValue("app"), *body.CertificateChain, *body.PrivateKey)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.sniToJSON(e, nil))
	return nil
}

func (s *Server) updateSNIEndpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	var body certBody
	if err := decode(r, &body); err != nil {
		return err
	}
	if err := body.check(); err != nil {
		return err
	}
	e, served, err := s.p.UpdateSNIEndpoint(r.Context(), c.account, r.PathValue("app"), r.PathValue("endpoint"), *body.CertificateChain, *body.PrivateKey)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.sniToJSON(e, served))
	return nil
}

func (s *Server) deleteSNIEndpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	e, err := s.p.DeleteSNIEndpoint(r.Context(), c.account, r.PathValue("app"), r.PathValue("endpoint"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.sniToJSON(e, nil))
	return nil
}

// ---- Automated Certificate Management ----

func (s *Server) enableACM(w http.ResponseWriter, r *http.Request, c *call) error {
	if _, err := readBody(r); err != nil {
		return err
	}
	app, err := s.p.SetACM(r.Context(), c.account, r.PathValue("app"), true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.appJSON(app))
	return nil
}

func (s *Server) disableACM(w http.ResponseWriter, r *http.Request, c *call) error {
	app, err := s.p.SetACM(r.Context(), c.account, r.PathValue("app"), false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.appJSON(app))
	return nil
}

func (s *Server) refreshACM(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		ACMRefresh *bool `json:"acm_refresh"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	app, err := s.p.RefreshACM(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.appJSON(app))
	return nil
}
