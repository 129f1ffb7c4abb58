package api

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"

	"github.com/google/uuid"
)

// Request ids are uuids, as Heroku's are, but not drawn from crypto/rand
// on every request (the log-input endpoint is a hot path): a random base
// drawn once per process plus a counter in the low 62 bits. They are unique
// within a process run, and across runs with the odds of random uuids.
var reqIDs struct {
	base uuid.UUID
	n    atomic.Uint64
}

func init() {
	rand.Read(reqIDs.base[:])
	reqIDs.base[6] = reqIDs.base[6]&0x0f | 0x40 // version 4
}

// newRequestID returns the next request id, formatted as a version 4 uuid.
func newRequestID() string {
	u := reqIDs.base
	lo := binary.BigEndian.Uint64(u[8:]) + reqIDs.n.Add(1)
	binary.BigEndian.PutUint64(u[8:], lo)
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}
