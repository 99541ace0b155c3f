package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// buildTags and the CGO_ENABLED=0 in goBuild are how the README builds
// credhost, for a faster start:
//
//   - CGO_ENABLED=0 makes a static executable: no dynamic loader, no libc
//     start-up, threads started without pthread. On Linux the resolver and
//     user lookups are Go's own (as they are by default for DNS); on macOS
//     they stay the system's, through libSystem.
//   - grpcnotrace leaves out gRPC's golang.org/x/net/trace (request traces
//     on /debug/requests, which credhost never serves).
//
// Tests and benchmarks build credhost, and the floors it is measured
// against, the same way, so a floor links what credhost links.
const buildTags = "grpcnotrace"

// goBuild is `CGO_ENABLED=0 go build -tags grpcnotrace -o out pkg`.
func goBuild(out, pkg string) *exec.Cmd {
	cmd := exec.Command("go", "build", "-tags", buildTags, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}

// The README's build command and .ci/test build credhost as the tests do.
func TestReadmeAndCIBuildLikeTheTests(t *testing.T) {
	t.Parallel()
	want := "CGO_ENABLED=0 go build -tags " + buildTags + " -o "
	for _, f := range []string{"../../README.md", "../../.ci/test"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), want+"credhost ./cmd/credhost") && !strings.Contains(string(data), want+"/dev/null ./cmd/credhost") {
			t.Errorf("%s does not build credhost with %q", f, want)
		}
	}
}
