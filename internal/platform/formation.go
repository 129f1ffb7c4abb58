package platform

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/skiffhq/skiff/internal/store"
)

// Size is a dyno size: how much memory, CPU and how many processes a dyno
// of that size gets, and how far it scales.
type Size struct {
	ID          string
	Name        string  // canonical spelling, e.g. "Standard-1X"
	MemoryMB    int     // memory quota
	Compute     int     // Heroku's compute units
	CPUShare    float64 // share of one core (1 = a full core); for cgroup cpu.weight
	Processes   int     // process+thread limit
	Dedicated   bool
	MaxPerType  int  // 0: no per-type limit beyond the app's
	PrivateOnly bool // only in Private Spaces, which Skiff does not have
	Class       string
}

// Sizes is Heroku's dyno size table (Common Runtime).
var Sizes = []Size{
	{Name: "Eco", MemoryMB: 512, Compute: 1, CPUShare: 1, Processes: 256, MaxPerType: 1, Class: "eco"},
	{Name: "Basic", MemoryMB: 512, Compute: 1, CPUShare: 1, Processes: 256, MaxPerType: 1, Class: "basic"},
	{Name: "Standard-1X", MemoryMB: 512, Compute: 1, CPUShare: 1, Processes: 256, Class: "standard"},
	{Name: "Standard-2X", MemoryMB: 1024, Compute: 2, CPUShare: 2, Processes: 512, Class: "standard"},
	{Name: "Performance-M", MemoryMB: 2560, Compute: 12, CPUShare: 2, Processes: 16384, Dedicated: true, MaxPerType: 10, Class: "performance"},
	{Name: "Performance-L", MemoryMB: 14336, Compute: 50, CPUShare: 8, Processes: 32768, Dedicated: true, MaxPerType: 10, Class: "performance"},
	{Name: "Performance-L-RAM", MemoryMB: 30720, Compute: 24, CPUShare: 4, Processes: 24576, Dedicated: true, MaxPerType: 10, Class: "performance"},
	{Name: "Performance-XL", MemoryMB: 63488, Compute: 50, CPUShare: 8, Processes: 32768, Dedicated: true, MaxPerType: 10, Class: "performance"},
	{Name: "Performance-2XL", MemoryMB: 129024, Compute: 100, CPUShare: 16, Processes: 65536, Dedicated: true, MaxPerType: 10, Class: "performance"},
	{Name: "Private-S", MemoryMB: 1024, Compute: 12, CPUShare: 2, Processes: 512, Dedicated: true, PrivateOnly: true, Class: "private"},
	{Name: "Private-M", MemoryMB: 2560, Compute: 12, CPUShare: 2, Processes: 16384, Dedicated: true, PrivateOnly: true, Class: "private"},
	{Name: "Private-L", MemoryMB: 14336, Compute: 50, CPUShare: 8, Processes: 32768, Dedicated: true, PrivateOnly: true, Class: "private"},
}

// DefaultSize is the size of a process type nobody has sized yet.
const DefaultSize = "Standard-1X"

func init() {
	for i := range Sizes {
		Sizes[i].ID = stableID("dyno-size", Sizes[i].Name)
	}
}

// SizeByName finds a size by name (any case) or id.
func SizeByName(name string) (Size, bool) {
	for _, s := range Sizes {
		if strings.EqualFold(s.Name, name) || s.ID == name {
			return s, true
		}
	}
	return Size{}, false
}

// processType is the Platform API's rule for process type names.
var processType = regexp.MustCompile(`^[-\w]{1,128}$`)

// syncFormation gives every process type of a release a formation entry:
// a new web type starts at one dyno, as on Heroku's first deploy, other new
// types at zero. Types the release no longer has keep their entry.
func (p *Platform) syncFormation(tx *store.Tx, app *App, procs map[string]Process) error {
	if len(procs) == 0 {
		return nil
	}
	existing, err := tx.Formations(app.ID)
	if err != nil {
		return err
	}
	have := make(map[string]*store.Formation, len(existing))
	for _, f := range existing {
		have[f.Type] = f
	}
	now := p.now()
	for typ, proc := range procs {
		f, ok := have[typ]
		if ok && f.Command == proc.Command {
			continue
		}
		if !ok {
			f = &store.Formation{ID: newID(), AppID: app.ID, Type: typ, Size: DefaultSize, CreatedAt: now}
			if typ == "web" {
				f.Quantity = 1
			}
		}
		f.Command = proc.Command
		f.UpdatedAt = now
		if err := tx.PutFormation(f); err != nil {
			return err
		}
	}
	return nil
}

// Formation lists an app's process types with their quantity and size.
func (p *Platform) Formation(ctx context.Context, actor *Account, ident string) (*App, []*store.Formation, error) {
	var app *App
	var fs []*store.Formation
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		if app, err = access(tx, actor, ident); err != nil {
			return err
		}
		fs, err = tx.Formations(app.ID)
		return err
	})
	return app, fs, err
}

// Quantity is a requested dyno count: absolute, or relative ("+2", "-1").
type Quantity struct {
	N        int
	Relative bool
}

// ParseQuantity reads a quantity as the API receives it: a JSON number or a
// string such as "3", "+2" or "-1".
func ParseQuantity(s string) (Quantity, error) {
	s = strings.TrimSpace(s)
	rel := strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-")
	n, err := strconv.Atoi(s)
	if err != nil || (!rel && n < 0) {
		return Quantity{}, errorf(KindInvalid, "Invalid quantity %q: expected a whole number such as 2, or a change such as +1 or -1.", s)
	}
	return Quantity{N: n, Relative: rel}, nil
}

// Scale is one process type's requested change; nil fields are unchanged.
type Scale struct {
	Type     string
	Quantity *Quantity
	Size     *string
}

// ScaleFormation applies updates to the formation atomically, within
// Heroku's scaling limits. Scaling never creates a release.
func (p *Platform) ScaleFormation(ctx context.Context, actor *Account, ident string, updates []Scale) ([]*store.Formation, error) {
	if len(updates) == 0 {
		return nil, errorf(KindInvalid, "No formation updates given.")
	}
	_, fs, err := p.UpdateFormation(ctx, actor, ident, nil, updates)
	return fs, err
}

// UpdateFormation releases images and applies scale updates in one
// transaction: if any part is refused, nothing changes. It returns the new
// release (nil without images) and the formation entries the updates named.
func (p *Platform) UpdateFormation(ctx context.Context, actor *Account, ident string, images []ImageUpdate, scales []Scale) (*Release, []*store.Formation, error) {
	if len(images) == 0 && len(scales) == 0 {
		return nil, nil, errorf(KindInvalid, "No formation updates given.")
	}
	if err := checkImages(images); err != nil {
		return nil, nil, err
	}
	var rel *Release
	var named []*store.Formation
	err := p.write(ctx, func(tx *store.Tx, ev *[]Event) error {
		app, err := access(tx, actor, ident)
		if err != nil {
			return err
		}
		if len(images) > 0 {
			if rel, err = p.deploy(tx, ev, app, actor, images); err != nil {
				return err
			}
		}
		named, err = p.scale(tx, ev, app, actor, scales)
		return err
	})
	return rel, named, err
}

// scale applies updates inside tx and announces what changed.
func (p *Platform) scale(tx *store.Tx, ev *[]Event, app *App, actor *Account, updates []Scale) ([]*store.Formation, error) {
	all, err := tx.Formations(app.ID)
	if err != nil {
		return nil, err
	}
	find := func(ident string) *store.Formation {
		for _, f := range all {
			if f.Type == ident || f.ID == ident {
				return f
			}
		}
		return nil
	}
	before := make(map[string]store.Formation, len(all))
	for _, f := range all {
		before[f.ID] = *f
	}
	var named []*store.Formation
	for _, u := range updates {
		f := find(u.Type)
		if f == nil {
			return nil, errorf(KindNotFound, "Couldn't find that process type (%s).", u.Type)
		}
		if u.Size != nil {
			s, ok := SizeByName(*u.Size)
			if !ok {
				return nil, errorf(KindInvalid, "Unknown dyno size %q. Sizes: %s.", *u.Size, sizeNames())
			}
			if s.PrivateOnly {
				return nil, errorf(KindInvalid, "%s dynos are only available in Private Spaces.", s.Name)
			}
			f.Size = s.Name
		}
		if q := u.Quantity; q != nil {
			if q.Relative {
				f.Quantity = max(0, f.Quantity+q.N)
			} else {
				f.Quantity = q.N
			}
		}
		if !slices.Contains(named, f) {
			named = append(named, f)
		}
	}
	if err := p.checkLimits(all); err != nil {
		return nil, err
	}
	now := p.now()
	var desc []string
	for _, f := range named {
		if b := before[f.ID]; b.Quantity == f.Quantity && b.Size == f.Size {
			continue
		}
		f.UpdatedAt = now
		if err := tx.PutFormation(f); err != nil {
			return nil, err
		}
		desc = append(desc, fmt.Sprintf("%s@%d:%s", f.Type, f.Quantity, f.Size))
	}
	if len(desc) > 0 {
		*ev = append(*ev, Event{Kind: EventFormation, AppID: app.ID, AppName: app.Name,
			Message: "Scaled to " + strings.Join(desc, " ") + " by user " + actor.Email, Time: now})
	}
	return named, nil
}

// checkLimits enforces Heroku's scaling rules on a whole formation.
func (p *Platform) checkLimits(all []*store.Formation) error {
	total, eco := 0, 0
	classes := map[string]bool{}
	for _, f := range all {
		s, _ := SizeByName(f.Size)
		total += f.Quantity
		if s.MaxPerType > 0 && f.Quantity > s.MaxPerType {
			return errorf(KindInvalid, "Cannot run more than %d %s dynos per process type.", s.MaxPerType, s.Name)
		}
		if s.Class == "eco" {
			eco += f.Quantity
		}
		classes[s.Class] = true
	}
	if total > p.limits.MaxDynos {
		return errorf(KindInvalid, "Cannot run more than %d dynos per app (asked for %d).", p.limits.MaxDynos, total)
	}
	if eco > 2 {
		return errorf(KindInvalid, "Cannot run more than 2 Eco dynos per app.")
	}
	for _, c := range []string{"eco", "basic"} {
		if classes[c] && len(classes) > 1 {
			return errorf(KindInvalid, "Cannot mix %s dynos with other dyno sizes: every process type of an app on %s dynos must be %s.",
				titleClass(c), titleClass(c), titleClass(c))
		}
	}
	return nil
}

func titleClass(c string) string { return strings.ToUpper(c[:1]) + c[1:] }

func sizeNames() string {
	var names []string
	for _, s := range Sizes {
		if !s.PrivateOnly {
			names = append(names, s.Name)
		}
	}
	return strings.Join(names, ", ")
}
