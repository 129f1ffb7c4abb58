package image

import (
	"crypto/sha256"
	"encoding/hex"
)

// Unpacks reports how many layers s has unpacked.
func Unpacks(s *Store) int64 { return s.unpacks.Load() }

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
