package api

import (
	"crypto/sha256"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

// grants caches what POST /apps/{app}/log-input needs to know about a
// request: that its token is valid and which app it may write to. A log
// shipper posts batches many times a second with the same token to the
// same app; without the cache every batch would cost two store reads
// (token, then app access), more than parsing and queueing its lines.
//
// An entry is trusted only while nothing could have changed it:
//
//   - for at most grantTTL;
//   - until the token expires;
//   - until any request other than a log-input one that may have changed
//     something (every method but GET and HEAD) has been handled by this
//     server: a revoked token, a removed collaborator, a renamed or
//     destroyed app go through the API, and each such request bumps the
//     generation once it is done, which invalidates every entry. An entry
//     is stamped with the generation read before its store reads, so a
//     look-up that raced with a change is never trusted afterwards.
//
// Failed look-ups are not cached. Entries are keyed by the SHA-256 of the
// token, not the token itself.
type grants struct {
	now func() time.Time
	gen atomic.Uint64

	mu sync.RWMutex
	m  map[grantKey]*grant
}

// logInputPattern is the route that reads grants; it never changes them.
const logInputPattern = "POST /apps/{app}/log-input"

// grantTTL bounds how long a cached grant is trusted, against changes that
// do not go through this server's API.
const grantTTL = 5 * time.Second

// maxGrants bounds the cache; when full it starts afresh.
const maxGrants = 4096

type grantKey struct {
	token [sha256.Size]byte
	app   string // the app as named in the path: name or id
}

// grant is a cached, successful authentication and app look-up.
type grant struct {
	gen     uint64
	until   time.Time // the earlier of grantTTL and the token's expiry
	account *platform.Account
	app     *platform.App
	limit   string // the account's rate-limit key
}

func newGrants(now func() time.Time) *grants {
	return &grants{now: now, m: map[grantKey]*grant{}}
}

// changed invalidates every grant: a request that may have changed
// accounts, tokens, apps or access is done.
func (g *grants) changed() { g.gen.Add(1) }

// get returns the cached grant of token for app, or nil.
func (g *grants) get(k *grantKey) *grant {
	g.mu.RLock()
	e := g.m[*k]
	g.mu.RUnlock()
	if e == nil || e.gen != g.gen.Load() || !g.now().Before(e.until) {
		return nil
	}
	return e
}

// put caches a grant built from store reads that started at generation gen.
func (g *grants) put(k grantKey, gen uint64, a *platform.Account, t time.Time, expires *time.Time, app *platform.App) *grant {
	e := &grant{gen: gen, until: t.Add(grantTTL), account: a, app: app, limit: "account:" + a.ID}
	if expires != nil && expires.Before(e.until) {
		e.until = *expires
	}
	k.app = strings.Clone(k.app)
	g.mu.Lock()
	if len(g.m) >= maxGrants {
		clear(g.m)
	}
	g.m[k] = e
	g.mu.Unlock()
	return e
}
