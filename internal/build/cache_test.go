package build

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// writeCacheEntry makes a key naming a layer of size bytes (tar size),
// last used at used.
func writeCacheEntry(t *testing.T, dir, key, layer string, size int64, used time.Time) {
	t.Helper()
	ld := filepath.Join(dir, "layers", layer)
	if err := os.MkdirAll(filepath.Join(ld, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ld, "layer.tar"), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(cacheRecord{DiffID: "sha256:" + layer, Size: size})
	kp := filepath.Join(dir, "keys", key)
	if err := os.MkdirAll(filepath.Dir(kp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(kp, used, used); err != nil {
		t.Fatal(err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestTrimCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	// Layers count twice their tar size: a=200, b=400, c=600 bytes.
	writeCacheEntry(t, dir, "k1", "a", 100, now.Add(-3*time.Hour))
	writeCacheEntry(t, dir, "k2", "b", 200, now.Add(-2*time.Hour))
	writeCacheEntry(t, dir, "k3", "b", 200, now.Add(-time.Minute)) // b is also used recently
	writeCacheEntry(t, dir, "k4", "c", 300, now.Add(-time.Hour))
	if err := os.WriteFile(filepath.Join(dir, "keys", "broken"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Within the limit: nothing goes (but the broken key).
	if n, freed, err := TrimCache(dir, 1200); err != nil || n != 0 || freed != 0 {
		t.Fatalf("within the limit: %d, %d, %v", n, freed, err)
	}
	if got := listDir(t, filepath.Join(dir, "keys")); !slices.Equal(got, []string{"k1", "k2", "k3", "k4"}) {
		t.Fatalf("keys: %v", got)
	}
	// 1000 allowed: the oldest key (k1) and its layer a go; then k2, but
	// b stays for k3.
	n, freed, err := TrimCache(dir, 1000)
	if err != nil || n != 1 || freed != 200 {
		t.Fatalf("trim to 1000: %d layers, %d bytes, %v", n, freed, err)
	}
	// 500: k2 (b still named by k3), then k4 (c goes): b alone, 400.
	if n, freed, err = TrimCache(dir, 500); err != nil || n != 1 || freed != 600 {
		t.Fatalf("trim to 500: %d layers, %d bytes, %v", n, freed, err)
	}
	if got := listDir(t, filepath.Join(dir, "keys")); !slices.Equal(got, []string{"k3"}) {
		t.Errorf("keys left: %v", got)
	}
	if got := listDir(t, filepath.Join(dir, "layers")); !slices.Equal(got, []string{"b"}) {
		t.Errorf("layers left: %v", got)
	}
	// No cache at all is no error.
	if _, _, err := TrimCache(filepath.Join(dir, "none"), 1); err != nil {
		t.Error(err)
	}
}
