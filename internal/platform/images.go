package platform

import (
	"context"
	"errors"

	"github.com/skiffhq/skiff/internal/store"
)

// ReleasedImages returns the images (as releases name them: "sha256:…")
// that must be kept: those of each app's newest keep releases (every
// release when keep <= 0), of its current release, of a release still
// pending, and of the releases running (if not nil) says dynos of the app
// still run. Garbage collection of images removes only what is not in
// this set.
func (p *Platform) ReleasedImages(ctx context.Context, keep int, running func(appID string) []int) (map[string]bool, error) {
	out := map[string]bool{}
	err := p.read(ctx, func(tx *store.Tx) error {
		apps, err := tx.AllApps()
		if err != nil {
			return err
		}
		for _, a := range apps {
			page := store.Page{Field: "version", Desc: true, Max: keep}
			if keep <= 0 {
				page.Max = 1 << 30
			}
			rs, _, err := tx.Releases(a.ID, page)
			if err != nil {
				return err
			}
			if cur, err := tx.CurrentRelease(a.ID); err == nil {
				rs = append(rs, cur)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if running != nil {
				for _, v := range running(a.ID) {
					if r, err := tx.ReleaseByVersion(a.ID, v); err == nil {
						rs = append(rs, r)
					} else if !errors.Is(err, store.ErrNotFound) {
						return err
					}
				}
			}
			for _, r := range rs {
				for _, proc := range r.Processes {
					if proc.Image != "" {
						out[proc.Image] = true
					}
				}
			}
		}
		// Builds: the imported stacks are the base images of every build.
		stacks, err := tx.Stacks()
		for _, st := range stacks {
			out[st.Image] = true
		}
		return err
	})
	return out, err
}
