package registry

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestConformance runs the OCI distribution-spec conformance suite against
// the registry: push, pull, content discovery and content management.
func TestConformance(t *testing.T) {
	bin := tool(t, "conformance", "github.com/opencontainers/distribution-spec/conformance")
	_, srv := newRegistry(t, "")
	results := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+strings.TrimPrefix(srv.URL, "http://"),
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_USERNAME=_",
		"OCI_PASSWORD="+aliceToken,
		"OCI_RESULTS_DIR="+results,
		"OCI_VERSION=1.1",
		"OCI_LOG=warn",
		"OCI_DATA_SHA512=false", // blobs are sha256 only: others get DIGEST_INVALID
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.CopyFS("/tmp/rgconf", os.DirFS(results))
		t.Fatalf("conformance: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
