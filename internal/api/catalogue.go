package api

import (
	"net/http"

	"github.com/skiffhq/skiff/internal/platform"
)

type featureJSON struct {
	CreatedAt     string `json:"created_at"`
	Description   string `json:"description"`
	DocURL        string `json:"doc_url"`
	Enabled       bool   `json:"enabled"`
	ID            string `json:"id"`
	Name          string `json:"name"`
	State         string `json:"state"`
	UpdatedAt     string `json:"updated_at"`
	DisplayName   string `json:"display_name"`
	FeedbackEmail string `json:"feedback_email"`
}

func featureToJSON(f *platform.AppFeature) featureJSON {
	return featureJSON{CreatedAt: timeJSON(f.CreatedAt), Description: f.Description, DocURL: f.DocURL, Enabled: f.Enabled,
		ID: f.ID, Name: f.Name, State: f.State, UpdatedAt: timeJSON(f.UpdatedAt), DisplayName: f.DisplayName}
}

func (s *Server) listFeatures(w http.ResponseWriter, r *http.Request, c *call) error {
	fs, err := s.p.AppFeatures(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	out := make([]featureJSON, 0, len(fs))
	for i := range fs {
		out = append(out, featureToJSON(&fs[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getFeature(w http.ResponseWriter, r *http.Request, c *call) error {
	f, err := s.p.AppFeature(r.Context(), c.account, r.PathValue("app"), r.PathValue("feature"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, featureToJSON(f))
	return nil
}

func (s *Server) updateFeature(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Enabled == nil {
		return invalidParams("enabled is required.")
	}
	f, err := s.p.SetAppFeature(r.Context(), c.account, r.PathValue("app"), r.PathValue("feature"), *body.Enabled)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, featureToJSON(f))
	return nil
}

// The catalogue's records never change, so they carry a fixed epoch.
const epoch = "2026-01-01T00:00:00Z"

type regionJSON struct {
	Country        string `json:"country"`
	CreatedAt      string `json:"created_at"`
	Description    string `json:"description"`
	ID             string `json:"id"`
	Locale         string `json:"locale"`
	Name           string `json:"name"`
	PrivateCapable bool   `json:"private_capable"`
	Provider       struct {
		Name   string `json:"name"`
		Region string `json:"region"`
	} `json:"provider"`
	UpdatedAt string `json:"updated_at"`
}

func regionToJSON(r platform.Region) regionJSON {
	j := regionJSON{Country: r.Country, CreatedAt: epoch, Description: r.Description, ID: r.ID, Locale: r.Locale, Name: r.Name, UpdatedAt: epoch}
	j.Provider.Name, j.Provider.Region = "skiff", r.Name
	return j
}

func (s *Server) listRegions(w http.ResponseWriter, r *http.Request, c *call) error {
	out := []regionJSON{}
	for _, rg := range platform.Regions {
		out = append(out, regionToJSON(rg))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getRegion(w http.ResponseWriter, r *http.Request, c *call) error {
	rg, ok := platform.RegionByName(r.PathValue("region"))
	if !ok {
		return notFound("Couldn't find that region.")
	}
	writeJSON(w, http.StatusOK, regionToJSON(rg))
	return nil
}

type stackJSON struct {
	CreatedAt string `json:"created_at"`
	Default   bool   `json:"default"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	State     string `json:"state"`
	UpdatedAt string `json:"updated_at"`
}

func stackToJSON(st platform.Stack) stackJSON {
	return stackJSON{CreatedAt: epoch, Default: st.Default, ID: st.ID, Name: st.Name, State: st.State, UpdatedAt: epoch}
}

func (s *Server) listStacks(w http.ResponseWriter, r *http.Request, c *call) error {
	out := []stackJSON{}
	for _, st := range platform.Stacks {
		out = append(out, stackToJSON(st))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getStack(w http.ResponseWriter, r *http.Request, c *call) error {
	st, ok := platform.StackByName(r.PathValue("stack"))
	if !ok {
		return notFound("Couldn't find that stack.")
	}
	writeJSON(w, http.StatusOK, stackToJSON(st))
	return nil
}

type sizeJSON struct {
	Architecture     string  `json:"architecture"`
	Compute          int     `json:"compute"`
	Cost             *string `json:"cost"`
	Dedicated        bool    `json:"dedicated"`
	PreciseDynoUnits float64 `json:"precise_dyno_units"`
	Generation       named   `json:"generation"`
	ID               string  `json:"id"`
	Memory           float64 `json:"memory"`
	Name             string  `json:"name"`
	PrivateSpaceOnly bool    `json:"private_space_only"`
	// Skiff extensions: the limits a dyno of this size runs under.
	ProcessLimit int     `json:"process_limit"`
	CPUShare     float64 `json:"cpu_share"`
}

func sizeToJSON(z platform.Size) sizeJSON {
	return sizeJSON{Architecture: "amd64", Compute: z.Compute, Dedicated: z.Dedicated, PreciseDynoUnits: float64(z.Compute),
		Generation: cedar, ID: z.ID, Memory: float64(z.MemoryMB) / 1024, Name: z.Name, PrivateSpaceOnly: z.PrivateOnly,
		ProcessLimit: z.Processes, CPUShare: z.CPUShare}
}

func sizesJSON(includePrivate bool) []sizeJSON {
	out := []sizeJSON{}
	for _, z := range platform.Sizes {
		if includePrivate || !z.PrivateOnly {
			out = append(out, sizeToJSON(z))
		}
	}
	return out
}

func (s *Server) listSizes(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, sizesJSON(true))
	return nil
}

func (s *Server) getSize(w http.ResponseWriter, r *http.Request, c *call) error {
	z, ok := platform.SizeByName(r.PathValue("size"))
	if !ok {
		return notFound("Couldn't find that dyno size.")
	}
	writeJSON(w, http.StatusOK, sizeToJSON(z))
	return nil
}

func (s *Server) listAppSizes(w http.ResponseWriter, r *http.Request, c *call) error {
	if _, err := s.p.App(r.Context(), c.account, r.PathValue("app")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sizesJSON(false))
	return nil
}
