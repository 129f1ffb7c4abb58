package image

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// LookupUser resolves an image's USER ("name", "uid", "name:group",
// "uid:gid") to numeric ids against the /etc/passwd and /etc/group of the
// topmost of layers (bottom first) that has them. A user without a group
// gets the gid passwd gives it, or its uid. Symbolic links in a layer
// cannot lead the lookup out of it.
func LookupUser(layers []string, user string) (uid, gid int, err error) {
	if user == "" {
		return 0, 0, nil
	}
	name, group, hasGroup := strings.Cut(user, ":")
	uid, gid = -1, -1
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		uid = n
	} else if f := idFields(layers, "etc/passwd", name, 2); len(f) == 2 {
		uid, gid = f[0], f[1]
	} else {
		return 0, 0, fmt.Errorf("no user %q in the image's /etc/passwd", name)
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil && n >= 0 {
			gid = n
		} else if f := idFields(layers, "etc/group", group, 1); len(f) == 1 {
			gid = f[0]
		} else {
			return 0, 0, fmt.Errorf("no group %q in the image's /etc/group", group)
		}
	}
	if gid < 0 {
		gid = uid
	}
	return uid, gid, nil
}

// idFields finds name in the topmost layer's copy of an /etc/passwd-style
// file and returns its first n numeric fields (uid and gid, or gid).
func idFields(layers []string, rel, name string, n int) []int {
	for i := len(layers) - 1; i >= 0; i-- {
		p, err := securejoin.SecureJoin(layers[i], rel)
		if err != nil {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if len(fields) < 2+n || fields[0] != name {
				continue
			}
			var out []int
			for _, s := range fields[2 : 2+n] {
				v, err := strconv.Atoi(s)
				if err != nil {
					return nil
				}
				out = append(out, v)
			}
			return out
		}
		return nil
	}
	return nil
}
