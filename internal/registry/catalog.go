package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/distribution/distribution/v3"
)

// maxCatalogPage caps the n of a catalog request.
const maxCatalogPage = 1000

// serveCatalog lists the repositories of the apps account can use, in
// lexical order, paginated with n and last as the Distribution API says.
func (r *Registry) serveCatalog(w http.ResponseWriter, req *http.Request, account string) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "the catalog is read with GET", nil)
		return
	}
	q := req.URL.Query()
	n := maxCatalogPage
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			writeError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n must be a whole number", nil)
			return
		}
		n = min(v, maxCatalogPage)
	}
	last := q.Get("last")
	en, ok := r.ns.(distribution.RepositoryEnumerator)
	if !ok {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "catalog unavailable", nil)
		return
	}
	ctx := req.Context()
	access := map[string]bool{}
	var repos []string
	err := en.Enumerate(ctx, func(name string) error {
		app, _, ok := strings.Cut(name, "/")
		if !ok {
			return nil
		}
		can, seen := access[app]
		if !seen {
			var err error
			id, err := r.cfg.Accounts.AppID(ctx, account, app)
			if err != nil {
				return err
			}
			can = id != ""
			access[app] = can
		}
		if can && name > last {
			repos = append(repos, name)
		}
		return nil
	})
	if err != nil {
		r.log.Error("registry: catalog", "err", err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "catalog unavailable", nil)
		return
	}
	sort.Strings(repos)
	if n == 0 {
		repos = nil
	} else if len(repos) > n {
		repos = repos[:n]
		w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?last=%s&n=%d>; rel="next"`, url.QueryEscape(repos[n-1]), n))
	}
	if repos == nil {
		repos = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string][]string{"repositories": repos})
}
