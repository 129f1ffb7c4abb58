package build

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// An app's layer cache (Request.Cache) holds keys/<step key>, a record
// naming the layer the step made, and layers/<diff id>/ with the layer as
// a tar and as a tree (the tree is an overlay lower directory for later
// steps). A key's modification time is when it was last made or used:
// TrimCache drops the least recently used keys first.

// touchKey marks a cache key as just used.
func touchKey(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// TrimCache shrinks an app's layer cache to at most limit bytes (a layer
// counts twice its tar size: the tar and the tree), dropping the least
// recently used steps first and then the layers no remaining step names.
// It must not run during a build that uses the cache (the service runs it
// after the app's build, whose builds are serialised). It returns how
// many layers it removed and the bytes they held.
func TrimCache(dir string, limit int64) (layers int, freed int64, err error) {
	keysDir, layersDir := filepath.Join(dir, "keys"), filepath.Join(dir, "layers")
	es, err := os.ReadDir(keysDir)
	if os.IsNotExist(err) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("build cache: %w", err)
	}
	type key struct {
		name  string
		layer string // hex of the diff id
		used  time.Time
	}
	var keys []key
	size := map[string]int64{} // layer hex -> bytes on disk
	refs := map[string]int{}   // layer hex -> keys naming it
	for _, e := range es {
		p := filepath.Join(keysDir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var rec cacheRecord
		info, serr := e.Info()
		if json.Unmarshal(b, &rec) != nil || serr != nil {
			os.Remove(p) // unreadable: never used again
			continue
		}
		hex := strings.TrimPrefix(rec.DiffID, "sha256:")
		keys = append(keys, key{e.Name(), hex, info.ModTime()})
		if refs[hex] == 0 {
			size[hex] = 2 * rec.Size
		}
		refs[hex]++
	}
	var total int64
	for _, n := range size {
		total += n
	}
	slices.SortFunc(keys, func(a, b key) int { return a.used.Compare(b.used) })
	for _, k := range keys {
		if total <= limit {
			break
		}
		if err := os.Remove(filepath.Join(keysDir, k.name)); err != nil && !os.IsNotExist(err) {
			return layers, freed, fmt.Errorf("build cache: %w", err)
		}
		if refs[k.layer]--; refs[k.layer] > 0 {
			continue
		}
		if err := os.RemoveAll(filepath.Join(layersDir, k.layer)); err != nil {
			return layers, freed, fmt.Errorf("build cache: %w", err)
		}
		layers++
		freed += size[k.layer]
		total -= size[k.layer]
	}
	return layers, freed, nil
}
