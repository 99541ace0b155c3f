package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	pythonplugin "github.com/credhost/credhost/examples/python-plugin"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

var (
	pythonOnce sync.Once
	pythonDir  string
	pythonErr  error
)

// pythonPlugin returns the command of the Python example plugin
// (examples/python-plugin/json_store.py), installed once per test binary
// beside credhostBin as a user installs it. It skips the test when the
// machine's Debian Python lacks the packages, unless CI requires them.
func pythonPlugin(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() {
		dir := filepath.Join(filepath.Dir(credhostBin), "python-plugin")
		if pythonErr = os.Mkdir(dir, 0o700); pythonErr == nil {
			pythonErr = pythonplugin.Install("../../examples/python-plugin", dir)
		}
		pythonDir = dir
	})
	if pythonErr != nil {
		if errors.Is(pythonErr, pythonplugin.ErrNoPython) && os.Getenv(pythonplugin.RequireEnv) != "1" {
			t.Skip(pythonErr)
		}
		t.Fatalf("install the Python plugin: %v", pythonErr)
	}
	return filepath.Join(pythonDir, "json_store.py")
}

// pythonStore is the Python plugin's store file.
type pythonStore struct {
	AccessToken  string            `json:"access_token"`
	RefreshToken string            `json:"refresh_token"`
	ExpiresAt    *int64            `json:"expires_at"`
	Scopes       []string          `json:"scopes"`
	Metadata     map[string]string `json:"metadata"`
	Note         string            `json:"note,omitempty"`
}

func (s *sandbox) readPythonStore(path string) pythonStore {
	s.t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	var st pythonStore
	if err := json.Unmarshal(raw, &st); err != nil {
		s.t.Fatalf("the store file is not the plugin's JSON: %v", err)
	}
	return st
}

// TestPythonPluginChain runs the Python plugin as a user does: the real
// credhost binary reads a token through it, refreshes it ahead of expiry
// against a rotating token endpoint, and saves the new one back through it;
// the next call reads the saved token without a refresh, and a forced
// refresh rotates again. The plugin ends cleanly each time (the controller's
// Shutdown), and nothing secret reaches stderr.
func TestPythonPluginChain(t *testing.T) {
	t.Parallel()
	cmd := pythonPlugin(t)
	srv := oauthtest.NewServer(t)
	s := newSandbox(t)
	access, refresh := srv.Issue()
	store := filepath.Join(s.home, "team", "credential.json")
	os.MkdirAll(filepath.Dir(store), 0o700)
	seed := fmt.Sprintf(`{"access_token":%q,"refresh_token":%q,"expires_at":%d,"scopes":["user:inference"],"metadata":{"subscriptionType":"max"},"note":"kept"}`,
		access, refresh, time.Now().Add(time.Minute).UnixMilli())
	if err := os.WriteFile(store, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	config := s.writeConfig(fmt.Sprintf(`version: 1
plugins: {start_timeout: 60s, call_timeout: 30s}
refresh: {buffer: 5m, timeout: 60s}
oauth: {token_url: %q, client_id: python-test}
providers:
  - name: team
    command: %s
    config: {path: %q}
`, srv.TokenURL(), cmd, store))
	var seen []string // every token, for the no-secret check
	check := func(r result, what string) {
		t.Helper()
		for _, line := range strings.Split(r.stderr, "\n") {
			if strings.Contains(line, "failed to exit gracefully") || strings.Contains(line, "signal: killed") {
				t.Errorf("%s: the plugin did not end when asked: %s", what, line)
			}
		}
		for _, tok := range seen {
			if strings.Contains(r.stderr, tok) {
				t.Errorf("%s: stderr shows a token:\n%s", what, r.stderr)
			}
		}
	}

	// Read, refresh (a minute left is inside the buffer), save.
	r := s.run("token", "--json", "--config", config, "--log-level", "debug")
	var out struct {
		AccessToken string `json:"access_token"`
		Provider    string `json:"provider"`
		Refreshed   bool   `json:"refreshed"`
		Degraded    bool   `json:"degraded"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil {
		t.Fatalf("token --json: exit %d\nstdout: %s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	saved := s.readPythonStore(store)
	seen = append(seen, access, refresh, saved.AccessToken, saved.RefreshToken)
	check(r, "token")
	if out.Provider != "team" || !out.Refreshed || out.Degraded || out.AccessToken == access || out.AccessToken == "" {
		t.Errorf("token --json: provider %q refreshed %v degraded %v, new token %v; want team, refreshed, not degraded, a new token",
			out.Provider, out.Refreshed, out.Degraded, out.AccessToken != access)
	}
	if saved.AccessToken != out.AccessToken || saved.RefreshToken == refresh || saved.RefreshToken == "" {
		t.Errorf("the store after the refresh does not hold the new tokens (access saved: %v, refresh rotated: %v)",
			saved.AccessToken == out.AccessToken, saved.RefreshToken != refresh && saved.RefreshToken != "")
	}
	if saved.ExpiresAt == nil || time.UnixMilli(*saved.ExpiresAt).Before(time.Now().Add(30*time.Minute)) {
		t.Errorf("the store's expiry after the refresh: %v; want about an hour ahead (the endpoint's expires_in)", saved.ExpiresAt)
	}
	if saved.Note != "kept" || saved.Metadata["subscriptionType"] != "max" || len(saved.Scopes) == 0 {
		t.Errorf("the save lost what it should keep: note %q, metadata %v, scopes %v", saved.Note, saved.Metadata, saved.Scopes)
	}
	if fi, err := os.Stat(store); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the store's mode after the save: %v, %v; want 0600", fi.Mode(), err)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("the endpoint got %d refreshes; want 1", n)
	}

	// The saved token is fresh: read as is, nothing sent.
	r = s.run("token", "--config", config)
	check(r, "second token")
	if r.code != 0 || r.stdout != saved.AccessToken+"\n" {
		t.Errorf("second token: exit %d, printed the saved token: %v\n%s", r.code, r.stdout == saved.AccessToken+"\n", r.stderr)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("a fresh stored token was refreshed again (%d requests); want 1", n)
	}

	// A forced refresh rotates from the saved refresh token.
	r = s.run("refresh", "--config", config)
	after := s.readPythonStore(store)
	seen = append(seen, after.AccessToken, after.RefreshToken)
	check(r, "refresh")
	if r.code != 0 || after.AccessToken == saved.AccessToken || after.RefreshToken == saved.RefreshToken {
		t.Errorf("refresh: exit %d, rotated %v\n%s", r.code, after.RefreshToken != saved.RefreshToken, r.stderr)
	}
	if n, reuse := srv.Requests(), srv.Reuses(); n != 2 || reuse != 0 {
		t.Errorf("the endpoint got %d refreshes and %d reuses; want 2 and none", n, reuse)
	}
}

// TestPythonPluginFaultsFailClearly runs the Python plugin broken on
// purpose in each way a plugin author can get the protocol wrong
// (credhost_plugin.py's CREDHOST_PY_FAULT) through the real credhost: each
// fails the provider, names it, says what went wrong, and leaks nothing.
func TestPythonPluginFaultsFailClearly(t *testing.T) {
	t.Parallel()
	cmd := pythonPlugin(t)
	// Where two wordings are given, the first is go-plugin's own, the
	// second the host's once it diagnoses a handshake itself; either says
	// what is wrong.
	// The timeouts are generous (Python may take seconds to start on a
	// loaded machine) but for the fault under test: a hang looks the same
	// however long one waits.
	const slow = "{start_timeout: 60s, call_timeout: 30s}"
	tests := map[string]struct{ want, timeouts string }{
		"no-mtls":      {`tls: first record does not look like a TLS handshake|the handshake has no TLS certificate`, slow},
		"padded-cert":  {`error parsing server cert: illegal base64 data|base64 with = padding`, slow},
		"wrong-cookie": {`the magic cookie CREDHOST_PLUGIN is missing or not the expected value`, slow},
		"empty-token":  {`returned a credential with an empty access token`, slow},
		"hang-start":   {`timeout while waiting for plugin to start|printed no plugin handshake within plugins.start_timeout`, "{start_timeout: 5s}"},
		"hang-read":    {`no answer within the call timeout`, "{start_timeout: 60s, call_timeout: 3s}"},
	}
	for fault, tc := range tests {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			store := filepath.Join(s.home, "credential.json")
			os.WriteFile(store, []byte(`{"access_token":"python-access-SECRET","refresh_token":"python-refresh-SECRET"}`), 0o600)
			config := s.writeConfig(fmt.Sprintf(`version: 1
plugins: %s
providers:
  - name: team
    command: %s
    env: [CREDHOST_PY_FAULT]
    config: {path: %q}
`, tc.timeouts, cmd, store))
			s.setenv("CREDHOST_PY_FAULT=" + fault)
			r := s.run("token", "--config", config)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want 1 (no credential) and nothing", r.code, r.stdout)
			}
			if !strings.Contains(r.stderr, "team (error)") || !regexp.MustCompile(tc.want).MatchString(r.stderr) {
				t.Errorf("stderr does not name the provider and say %q:\n%s", tc.want, r.stderr)
			}
			assertNoSecret(t, "stderr", r.stderr)
		})
	}
}

// BenchmarkColdTokenThirdParty times a cold `credhost token` through a
// third-party plugin process, each a chain of that one provider, next to
// its floors measured in the same run:
//
//	spawn/python          Debian's python3 doing nothing
//	spawn/python-imports  python3 importing credhost_plugin (grpc,
//	                      protobuf, cryptography), the Python plugin's floor
//	credhost/cmdtoken     examples/cmdtoken (Go) running `cat` on a token file
//	credhost/python       examples/python-plugin reading its JSON store
//
// Each reports wall time and cpu-ms/op, the CPU time of the process and
// the children it waited for (the plugin).
//
// Run with: go test -run '^$' -bench ColdTokenThirdParty -count 10 ./cmd/credhost | benchstat -
func BenchmarkColdTokenThirdParty(b *testing.B) {
	py := pythonPlugin(b)
	home := b.TempDir()
	cmdtoken := filepath.Join(b.TempDir(), "cmdtoken")
	if out, err := exec.Command("go", "build", "-o", cmdtoken, "../../examples/cmdtoken").CombinedOutput(); err != nil {
		b.Fatalf("build examples/cmdtoken: %v\n%s", err, out)
	}
	tokenFile := filepath.Join(home, "token")
	store := filepath.Join(home, "credential.json")
	os.WriteFile(tokenFile, []byte("bench-token\n"), 0o600)
	os.WriteFile(store, []byte(fmt.Sprintf(`{"access_token":"bench-token","expires_at":%d}`, time.Now().Add(time.Hour).UnixMilli())), 0o600)
	configs := map[string]string{
		"cmdtoken": fmt.Sprintf("version: 1\nproviders:\n  - {name: corp, command: %s, config: {argv: [cat, %q]}}\n", cmdtoken, tokenFile),
		"python":   fmt.Sprintf("version: 1\nproviders:\n  - {name: team, command: %s, config: {path: %q}}\n", py, store),
	}
	for name, c := range configs {
		if err := os.WriteFile(filepath.Join(home, name+".yaml"), []byte(c), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	imports := fmt.Sprintf("import sys; sys.path.insert(0, %q); import credhost_plugin", filepath.Dir(py))
	cases := []struct {
		name string
		argv []string
	}{
		{"spawn/python", []string{pythonplugin.Python, "-c", "pass"}},
		{"spawn/python-imports", []string{pythonplugin.Python, "-c", imports}},
		{"credhost/cmdtoken", []string{credhostBin, "token", "--config", filepath.Join(home, "cmdtoken.yaml")}},
		{"credhost/python", []string{credhostBin, "token", "--config", filepath.Join(home, "python.yaml")}},
	}
	env := newSandboxEnv(home)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// CPU time (the process's and its reaped children's, so a
			// plugin's too) says what a call costs on a machine busy with
			// other work, where wall time mostly measures the wait.
			var cpu time.Duration
			for b.Loop() {
				cmd := exec.Command(c.argv[0], c.argv[1:]...)
				cmd.Env = env
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", c.name, err, out)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// TestPythonPluginPinned runs the Python plugin pinned as an interpreted
// plugin: the interpreter isolated (-I: no script directory, no
// PYTHONPATH on its path; -B: no bytecode written into the pinned tree),
// the script by its sha256 and the module directory by its tree hash,
// computed by the shell pipeline the config documents. The plugin finds
// its modules through $CREDHOST_PLUGIN_MODULES; a module changed after
// pinning stops it from running.
func TestPythonPluginPinned(t *testing.T) {
	t.Parallel()
	pythonPlugin(t) // skips without Python
	dir := filepath.Join(t.TempDir(), "python-plugin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pythonplugin.Install("../../examples/python-plugin", dir); err != nil {
		t.Fatal(err)
	}
	// Only the owner may change a pinned tree, whatever the umask.
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if fi, err := os.Stat(path); err == nil {
			os.Chmod(path, fi.Mode().Perm()&^0o022)
		}
		return err
	})
	script := filepath.Join(dir, "json_store.py")
	data, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	scriptSum := sha256.Sum256(data)
	treeHash := func() string {
		t.Helper()
		out, err := exec.Command("sh", "-c", `cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`, "sh", dir).Output()
		if err != nil {
			t.Fatal(err)
		}
		sum, _, _ := strings.Cut(string(out), " ")
		return sum
	}
	s := newSandbox(t)
	store := filepath.Join(s.home, "credential.json")
	os.WriteFile(store, []byte(`{"access_token":"pinned-python-SECRET"}`), 0o600)
	config := s.writeConfig(fmt.Sprintf(`version: 1
plugins: {start_timeout: 60s, call_timeout: 30s}
providers:
  - name: team
    command: %s
    args: [-I, -B]
    script: %s
    script_sha256: %x
    modules: %s
    modules_sha256: %s
    config: {path: %q}
`, pythonplugin.Python, script, scriptSum, dir, treeHash(), store))

	r := s.run("token", "--config", config)
	if r.code != 0 || r.stdout != "pinned-python-SECRET\n" {
		t.Fatalf("token through the pinned Python plugin: exit %d\n%s", r.code, r.stderr)
	}
	assertNoSecret(t, "stderr", r.stderr)

	// A module changed after pinning: the plugin does not run.
	f, err := os.OpenFile(filepath.Join(dir, "credhost_plugin.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n# changed after pinning\n")
	f.Close()
	r = s.run("token", "--config", config)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "the config pins") || !strings.Contains(r.stderr, "modules_sha256") {
		t.Errorf("token after a module changed: exit %d; want 1 and the modules pin mismatch\n%s", r.code, r.stderr)
	}
}
