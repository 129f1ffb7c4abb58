package registry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// tokenTTL is how long a bearer token from /v2/token is good for; clients
// fetch a new one when it runs out.
const tokenTTL = 15 * time.Minute

// tokenKey signs the bearer tokens of the token flow docker clients
// negotiate. A token names an account, the API token it was issued for and
// an expiry; at each request the API token must still be active, and what
// the account may do is decided then, so a registry token never outlives a
// revoked API token or a lost access.
type tokenKey struct{ key []byte }

func openTokenKey(path string) (*tokenKey, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return &tokenKey{key: b}, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	rand.Read(b)
	if err := writeFileAtomic(path, b); err != nil {
		return nil, err
	}
	return &tokenKey{key: b}, nil
}

func (k *tokenKey) mac(payload string) string {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue returns a token for who that expires at exp.
func (k *tokenKey) issue(who Principal, exp time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(who.Account + "|" + who.Token + "|" + strconv.FormatInt(exp.Unix(), 10)))
	return "skr." + payload + "." + k.mac(payload)
}

// verify returns whom a token this key issued, still valid, names.
func (k *tokenKey) verify(tok string, now time.Time) (Principal, error) {
	bad := errors.New("bad registry token")
	rest, ok := strings.CutPrefix(tok, "skr.")
	if !ok {
		return Principal{}, errors.New("not a registry token")
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(k.mac(payload))) {
		return Principal{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return Principal{}, bad
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 {
		return Principal{}, bad
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return Principal{}, bad
	}
	if now.Unix() >= exp {
		return Principal{}, errors.New("registry token expired")
	}
	return Principal{Account: parts[0], Token: parts[1]}, nil
}

// serveToken is the token endpoint of the Docker token flow: GET with Basic
// credentials (any user name, an API token as password), or the OAuth2
// password grant by POST that containerd-based clients use.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	var secret string
	switch req.Method {
	case http.MethodGet:
		_, secret, _ = req.BasicAuth()
	case http.MethodPost:
		if err := req.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "UNSUPPORTED", "bad token request: "+err.Error(), nil)
			return
		}
		if gt := req.PostForm.Get("grant_type"); gt != "password" {
			writeError(w, http.StatusBadRequest, "UNSUPPORTED", fmt.Sprintf("grant_type %q: only password is supported", gt), nil)
			return
		}
		secret = req.PostForm.Get("password")
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "use GET or POST", nil)
		return
	}
	var who Principal
	if secret != "" {
		if p, err := r.cfg.Accounts.Authenticate(req.Context(), secret); err == nil {
			who = p
		}
	}
	if who.Account == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="skiff"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED",
			"authentication required: log in with any user name and a Skiff API token as password", nil)
		return
	}
	now := time.Now()
	tok := r.tokens.issue(who, now.Add(tokenTTL))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   int(tokenTTL / time.Second),
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}
