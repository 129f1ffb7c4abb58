package cli

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func init() {
	register("builds:create", command{
		usage: "builds:create [DIR] -a APP [--version V]",
		help:  "build DIR (default .) from its heroku.yml or Dockerfile and release it, showing the build's output",
		flags: []flagDef{{Long: "version", Value: true, Usage: "version recorded for the build (default: the git commit of DIR, if any)"}},
		app:   appRequired, maxArgs: 1, run: buildsCreate,
	}, "deploy")
	register("builds", command{
		usage: "builds -a APP [--json]", help: "list an app's builds",
		flags: []flagDef{jsonFlag}, app: appRequired, run: buildsList,
	})
	register("builds:output", command{
		usage: "builds:output BUILD_ID -a APP", help: "show a build's output (live while it runs)",
		app: appRequired, minArgs: 1, maxArgs: 1, run: buildsOutput,
	})
	register("builds:cache:purge", command{
		usage: "builds:cache:purge -a APP", help: "clear an app's build cache: the next build runs every step",
		app: appRequired, run: buildsCachePurge,
	})
	register("stack:import", command{
		usage:   "stack:import NAME ROOTFS.tar[.gz]",
		help:    "import a root filesystem tarball (e.g. from debootstrap) as a base image Dockerfiles name in FROM (admin only)",
		minArgs: 2, maxArgs: 2, run: stackImport,
	})
}

type build struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	CreatedAt       string `json:"created_at"`
	OutputStreamURL string `json:"output_stream_url"`
	SourceBlob      struct {
		Version *string `json:"version"`
	} `json:"source_blob"`
	User struct {
		Email string `json:"email"`
	} `json:"user"`
	Release *struct {
		ID string `json:"id"`
	} `json:"release"`
}

// buildsCreate uploads DIR as a tarball (POST /apps/{app}/sources, then
// a PUT to its put_url), starts a build of it and follows its output.
func buildsCreate(e *Env, in *Input) error {
	dir := "."
	if len(in.Args) == 1 {
		dir = in.Args[0]
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	version := in.String("version")
	if version == "" {
		if out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output(); err == nil {
			version = strings.TrimSpace(string(out))
		}
	}
	var src struct {
		SourceBlob struct {
			GetURL string `json:"get_url"`
			PutURL string `json:"put_url"`
		} `json:"source_blob"`
	}
	if err := e.Do(Request{Method: "POST", Path: "/apps/" + escape(in.App) + "/sources"}, &src); err != nil {
		return err
	}
	if err := e.action("Uploading "+dir, func() (string, error) {
		return "done", e.upload("PUT", src.SourceBlob.PutURL, "", func(w io.Writer) error { return tarSource(dir, w) })
	}); err != nil {
		return err
	}
	body := map[string]any{"source_blob": map[string]string{"url": src.SourceBlob.GetURL, "version": version}}
	var b build
	if err := e.Do(Request{Method: "POST", Path: "/apps/" + escape(in.App) + "/builds", Body: body}, &b); err != nil {
		return err
	}
	if err := e.buildOutput(b.OutputStreamURL); err != nil {
		return err
	}
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(in.App) + "/builds/" + escape(b.ID)}, &b); err != nil {
		return err
	}
	if b.Status != "succeeded" {
		return fmt.Errorf("Build %s %s.", b.ID, b.Status)
	}
	return nil
}

// upload sends the body fill writes, unbuffered, with a method to url.
func (e *Env) upload(method, url, auth string, fill func(w io.Writer) error) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(fill(pw)) }()
	req, err := http.NewRequest(method, url, pr)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/gzip")
	req.Header.Set("User-Agent", "skiff-cli")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		ae := &APIError{Status: resp.StatusCode}
		if decodeErr := json.Unmarshal(msg, ae); decodeErr != nil || ae.Message == "" {
			ae.Message = fmt.Sprintf("%s %s: %s %s", method, url, resp.Status, strings.TrimSpace(string(msg)))
		}
		return ae
	}
	return nil
}

func (e *Env) httpClient() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return http.DefaultClient
}

// buildOutput copies a build's output_stream_url to stdout until it ends.
func (e *Env) buildOutput(url string) error {
	resp, err := e.httpClient().Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("build output: %s", resp.Status)
	}
	_, err = io.Copy(e.Out, resp.Body)
	return err
}

// tarSource writes dir as a gzipped tarball, without .git. Symbolic links
// are kept as links; other special files are left out.
func tarSource(dir string, w io.Writer) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func buildsList(e *Env, in *Input) error {
	var raws []json.RawMessage
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(in.App) + "/builds",
		Range: "created_at ..; order=desc, max=50", Partial: true}, &raws); err != nil {
		return err
	}
	if in.Bool("json") {
		return printJSON(e.Out, raws)
	}
	var rows [][]string
	for _, r := range raws {
		var b build
		if err := json.Unmarshal(r, &b); err != nil {
			return err
		}
		version := ""
		if b.SourceBlob.Version != nil {
			version = *b.SourceBlob.Version
		}
		rows = append(rows, []string{b.ID, b.Status, version, b.User.Email, b.CreatedAt})
	}
	fmt.Fprintf(e.Out, "=== %s Builds\n\n", in.App)
	table(e.Out, []string{"ID", "Status", "Version", "User", "Created"}, rows)
	return nil
}

func buildsOutput(e *Env, in *Input) error {
	var b build
	if err := e.Do(Request{Method: "GET", Path: "/apps/" + escape(in.App) + "/builds/" + escape(in.Args[0])}, &b); err != nil {
		return err
	}
	return e.buildOutput(b.OutputStreamURL)
}

func buildsCachePurge(e *Env, in *Input) error {
	return e.action("Purging the build cache of "+in.App, func() (string, error) {
		return "done", e.Do(Request{Method: "DELETE", Path: "/apps/" + escape(in.App) + "/build-cache"}, nil)
	})
}

// stackImport sends a root filesystem tarball to PUT /stacks/{name}/rootfs.
func stackImport(e *Env, in *Input) error {
	name, path := in.Args[0], in.Args[1]
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return errors.New(path + " is not a tarball file")
	}
	return e.action("Importing "+path+" as "+name, func() (string, error) {
		err := e.upload("PUT", e.APIURL+"/stacks/"+escape(name)+"/rootfs", "Bearer "+e.Token, func(w io.Writer) error {
			_, err := io.Copy(w, f)
			return err
		})
		return "done, use FROM " + name, err
	})
}
