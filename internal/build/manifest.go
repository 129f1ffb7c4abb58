package build

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// plan is what one build makes: an image per Dockerfile, and the process
// types that run them.
type plan struct {
	images map[string]imagePlan // by process type that names it in build.docker
	args   map[string]string
	procs  map[string]procPlan
}

type imagePlan struct {
	dockerfile string // relative to the source root, slash-separated
}

type procPlan struct {
	image   string // a key of plan.images
	command string // "" runs the image's ENTRYPOINT and CMD
}

// herokuYML is the part of heroku.yml Skiff reads.
type herokuYML struct {
	Setup   map[string]any    `yaml:"setup"`
	Build   herokuBuild       `yaml:"build"`
	Run     map[string]runDef `yaml:"run"`
	Release *struct {
		Image   string  `yaml:"image"`
		Command command `yaml:"command"`
	} `yaml:"release"`
}

type herokuBuild struct {
	Docker map[string]string `yaml:"docker"`
	Config map[string]string `yaml:"config"`
}

// runDef is a run entry: a command, or {command, image}.
type runDef struct {
	Command command
	Image   string
}

func (r *runDef) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode || n.Kind == yaml.SequenceNode {
		return n.Decode(&r.Command)
	}
	var v struct {
		Command command `yaml:"command"`
		Image   string  `yaml:"image"`
	}
	if err := n.Decode(&v); err != nil {
		return err
	}
	r.Command, r.Image = v.Command, v.Image
	return nil
}

// command is a string, or a list of strings joined by spaces (as Heroku's
// release.command lists).
type command string

func (c *command) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*c = command(n.Value)
		return nil
	case yaml.SequenceNode:
		var parts []string
		if err := n.Decode(&parts); err != nil {
			return err
		}
		*c = command(strings.Join(parts, " "))
		return nil
	}
	return fmt.Errorf("line %d: want a command string or a list of strings", n.Line)
}

// planBuild reads heroku.yml at the source root or, without one, builds
// the root Dockerfile for web.
func planBuild(root string) (*plan, error) {
	p := &plan{images: map[string]imagePlan{}, procs: map[string]procPlan{}}
	ymlPath, err := containedPath(root, "heroku.yml")
	if err != nil {
		if _, err := containedPath(root, "Dockerfile"); err != nil {
			return nil, fmt.Errorf("%w: no heroku.yml and no Dockerfile at the root of the source", ErrFailed)
		}
		p.images["web"] = imagePlan{dockerfile: "Dockerfile"}
		p.procs["web"] = procPlan{image: "web"}
		return p, nil
	}
	b, err := readMax(ymlPath, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("%w: heroku.yml: %v", ErrFailed, err)
	}
	var y herokuYML
	if err := yaml.Unmarshal(b, &y); err != nil {
		return nil, fmt.Errorf("%w: heroku.yml: %v", ErrFailed, err)
	}
	if len(y.Setup) > 0 {
		return nil, fmt.Errorf("%w: heroku.yml: the setup section (add-ons, config) is not supported; remove it", ErrFailed)
	}
	if len(y.Build.Docker) == 0 {
		return nil, fmt.Errorf("%w: heroku.yml: build.docker names no Dockerfile (e.g. build: {docker: {web: Dockerfile}})", ErrFailed)
	}
	for typ, df := range y.Build.Docker {
		rel := relClean(df)
		if rel == "" {
			return nil, fmt.Errorf("%w: heroku.yml: build.docker.%s: empty path", ErrFailed, typ)
		}
		if _, err := containedPath(root, rel); err != nil {
			return nil, fmt.Errorf("%w: heroku.yml: build.docker.%s: %s: not found in the source", ErrFailed, typ, df)
		}
		p.images[typ] = imagePlan{dockerfile: filepath.ToSlash(rel)}
		p.procs[typ] = procPlan{image: typ, command: string(y.Run[typ].Command)}
	}
	p.args = y.Build.Config
	defaultImage := "web"
	if _, ok := p.images["web"]; !ok {
		defaultImage = sortedKeys(p.images)[0]
	}
	for typ, r := range y.Run {
		img := r.Image
		if img == "" {
			if _, ok := p.images[typ]; ok {
				continue
			}
			img = defaultImage
		}
		if _, ok := p.images[img]; !ok {
			return nil, fmt.Errorf("%w: heroku.yml: run.%s: image %q is not built (build.docker has %s)", ErrFailed, typ, img, strings.Join(sortedKeys(p.images), ", "))
		}
		p.procs[typ] = procPlan{image: img, command: string(r.Command)}
	}
	if y.Release != nil && y.Release.Command != "" {
		img := y.Release.Image
		if img == "" {
			img = defaultImage
		}
		if _, ok := p.images[img]; !ok {
			return nil, fmt.Errorf("%w: heroku.yml: release.image %q is not built", ErrFailed, img)
		}
		p.procs["release"] = procPlan{image: img, command: string(y.Release.Command)}
	}
	return p, nil
}

// contextOf is a Dockerfile's build context: its directory, as on Heroku.
func contextOf(dockerfile string) (dir, name string) {
	return path.Dir(dockerfile), path.Base(dockerfile)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sourceRoot is where a source tree's files are: the directory itself, or
// its only entry when that is a directory and the root has neither
// heroku.yml nor Dockerfile (a GitHub tarball's top-level directory).
func sourceRoot(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || !ents[0].IsDir() {
		return dir
	}
	for _, n := range []string{"heroku.yml", "Dockerfile"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			return dir
		}
	}
	return filepath.Join(dir, ents[0].Name())
}
