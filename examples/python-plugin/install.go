// Package pythonplugin is the Go side of the Python plugin example: the
// example itself is Python (credhost_plugin.py, the reusable plumbing;
// json_store.py, a provider that is only its store), and this package
// installs a runnable copy of it for the tests here and in cmd/credhost,
// which run it through sdktest, the real credhost binary and `credhost
// plugin check`.
package pythonplugin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Python is the interpreter the example runs with (json_store.py's
// shebang): Debian's, which has python3-grpcio, python3-protobuf,
// python3-grpc-tools and python3-cryptography. A python3 earlier on PATH
// (a pyenv, a virtualenv) may lack them.
const Python = "/usr/bin/python3"

// RequireEnv, set to "1" (CI does), makes a machine without the Python
// packages a test failure rather than a skip.
const RequireEnv = "CREDHOST_REQUIRE_PYTHON"

// ErrNoPython means Python or one of its packages is missing.
var ErrNoPython = errors.New("python plugin unavailable")

// files are the example's files a running plugin needs, besides the stubs.
var files = []string{"credhost_plugin.py", "json_store.py"}

// Install copies the example from src (its directory in the repository)
// to dst and generates its stubs there with src's gen.sh, as a user
// installs it; dst/json_store.py is then the plugin's command. The error
// wraps ErrNoPython when Python lacks a package the plugin needs.
func Install(src, dst string) error {
	probe := exec.Command(Python, "-c", "import grpc, grpc_tools, google.protobuf, cryptography")
	if out, err := probe.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s cannot import grpc, grpc_tools, google.protobuf and cryptography (apt-get install python3-grpcio python3-grpc-tools python3-protobuf python3-cryptography): %v: %s",
			ErrNoPython, Python, err, strings.TrimSpace(string(out)))
	}
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o755); err != nil {
			return err
		}
	}
	gen := exec.Command("sh", filepath.Join(src, "gen.sh"), filepath.Join(dst, "generated"))
	gen.Env = append(os.Environ(), "PYTHON="+Python)
	if out, err := gen.CombinedOutput(); err != nil {
		return fmt.Errorf("gen.sh: %v: %s", err, out)
	}
	return nil
}
