package build

import "github.com/skiffhq/skiff/internal/image"

// lookupUser resolves a USER for a RUN step. Unlike a dyno, a build step
// may run as root (uid 0 without any capability, as the runtime runs every
// container): the image's files are root's to change.
func lookupUser(layers []string, user string) (uint32, uint32) {
	uid, gid, err := image.LookupUser(layers, user)
	if err != nil {
		return 0, 0
	}
	return uint32(uid), uint32(gid)
}
