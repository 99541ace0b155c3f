package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// buildOnce builds a Go program (a package directory) once per test
// binary, next to credhostBin.
func buildOnce(pkg string) func(t *testing.T) string {
	var once sync.Once
	var bin string
	var err error
	return func(t *testing.T) string {
		t.Helper()
		once.Do(func() {
			bin = filepath.Join(filepath.Dir(credhostBin), filepath.Base(pkg))
			if runtime.GOOS == "windows" {
				bin += ".exe"
			}
			if out, berr := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); berr != nil {
				err = fmt.Errorf("build %s: %v\n%s", pkg, berr, out)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return bin
	}
}

var (
	brokenPlugin  = buildOnce("./testdata/brokenplugin")
	cmdtokenBuild = buildOnce("../../examples/cmdtoken")
)

// checkLine is one line of `credhost plugin check`: outcome, check, detail.
var checkLine = regexp.MustCompile(`^(ok|FAIL|skip) +([a-z-]+) +(.*)$`)

// runCheck runs `credhost plugin check` with args and returns its exit
// code and its lines by check name.
func runCheck(t *testing.T, env []string, args ...string) (int, map[string]string, string) {
	t.Helper()
	cmd := exec.Command(credhostBin, append([]string{"plugin", "check"}, args...)...)
	cmd.Env = env
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run credhost plugin check: %v", err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		m := checkLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("a line that is not outcome, check, detail: %q", l)
			continue
		}
		lines[m[2]] = m[1] + " " + m[3]
	}
	return code, lines, string(out)
}

// pluginCheckCase is a plugin `credhost plugin check` runs against.
type pluginCheckCase struct {
	// argv returns the plugin's command line, or skips the test.
	argv func(t *testing.T) []string
	// config is the --config block.
	config string
	// env is added to the plugin's environment.
	env []string
	// fail, for a broken plugin, is the check that must fail and a
	// pattern its line must match; nil for a plugin that must pass.
	fail *wantFail
	// timeouts, when set, are the --start-timeout and --call-timeout
	// (instead of the defaults, or 30s and 2s for a broken plugin): an
	// interpreter may need longer to start on a loaded machine.
	timeouts []string
}

type wantFail struct {
	check   string
	pattern string
}

// pluginCheckCases are the plugins the check runs against: every
// built-in, served as a process; the example plugin; and plugins that get
// one thing wrong, each of which must fail on the right line. A plugin in
// another language is one more row (its argv runs its interpreter).
var pluginCheckCases = map[string]pluginCheckCase{
	"builtin env":  {argv: serveBuiltin("env"), config: `{"var":"CREDHOST_CHECK_UNSET_VAR"}`},
	"builtin file": {argv: serveBuiltin("file"), config: `{"path":"{{dir}}/credentials.json"}`},
	"builtin keychain": {argv: func(t *testing.T) []string {
		if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" && os.Getenv("CREDHOST_REQUIRE_SECRET_SERVICE") != "1" {
			t.Skip("no D-Bus session bus; run the tests through .ci/test for a private Secret Service")
		}
		return serveBuiltin("keychain")(t)
	}, config: `{"service":"credhost-check-{{dir}}","account":"tester"}`},
	"builtin wincred": {argv: func(t *testing.T) []string {
		if runtime.GOOS != "windows" {
			t.Skip("Windows Credential Manager exists only on Windows")
		}
		return serveBuiltin("wincred")(t)
	}, config: `{"target":"credhost-check-{{dir}}"}`},
	"examples/cmdtoken": {argv: func(t *testing.T) []string { return []string{cmdtokenBuild(t)} }, config: `{"argv":["true"]}`},

	"wrong cookie":          {argv: broken("wrong-cookie"), fail: &wantFail{"handshake", `exited .* before printing its handshake line: .*magic cookie CREDHOST_PLUGIN=[0-9a-f]+`}},
	"no mTLS":               {argv: broken("no-mtls"), fail: &wantFail{"handshake", `no certificate .*mutual TLS only.*PLUGIN_CLIENT_CERT`}},
	"padded certificate":    {argv: broken("padded"), fail: &wantFail{"handshake", `padded base64`}},
	"empty token from Read": {argv: broken("empty-token"), fail: &wantFail{"read-empty", `empty access token .*not-found`}},
	"hangs at start":        {argv: broken("hang"), timeouts: []string{"2s", "2s"}, fail: &wantFail{"handshake", `printed no handshake line within 2s`}},
	"Read hangs":            {argv: broken("hang-read"), fail: &wantFail{"read-empty", `Read did not answer within 2s`}},

	// The Python example (examples/python-plugin), and the same mistakes
	// made by its module on purpose (CREDHOST_PY_FAULT).
	"examples/python-plugin": {argv: pythonArgv, config: pythonConfig, timeouts: pythonTimeouts},
	"python: wrong cookie": {argv: pythonArgv, config: pythonConfig, env: []string{"CREDHOST_PY_FAULT=wrong-cookie"}, timeouts: pythonTimeouts,
		fail: &wantFail{"handshake", `exited .* before printing its handshake line: .*magic cookie CREDHOST_PLUGIN is missing or not the expected value`}},
	"python: no mTLS": {argv: pythonArgv, config: pythonConfig, env: []string{"CREDHOST_PY_FAULT=no-mtls"}, timeouts: pythonTimeouts,
		fail: &wantFail{"handshake", `no certificate .*mutual TLS only.*PLUGIN_CLIENT_CERT`}},
	"python: padded certificate": {argv: pythonArgv, config: pythonConfig, env: []string{"CREDHOST_PY_FAULT=padded-cert"}, timeouts: pythonTimeouts,
		fail: &wantFail{"handshake", `padded base64`}},
	"python: empty token from Read": {argv: pythonArgv, config: pythonConfig, env: []string{"CREDHOST_PY_FAULT=empty-token"}, timeouts: pythonTimeouts,
		fail: &wantFail{"read-seeded", `empty access token .*not-found`}},
	// A plugin that hangs shows it whatever the machine's load: 5s is enough.
	"python: hangs at start": {argv: pythonArgv, config: pythonConfig, env: []string{"CREDHOST_PY_FAULT=hang-start"}, timeouts: []string{"5s", "2s"},
		fail: &wantFail{"handshake", `printed no handshake line within 5s`}},
	"python: Read hangs": {argv: pythonArgv, config: pythonConfig, env: []string{"CREDHOST_PY_FAULT=hang-read"}, timeouts: []string{"30s", "2s"},
		fail: &wantFail{"deadline", `the Read after the ones given up: got (Read did not answer within 2s|Deadline Exceeded)`}},
}

// The Python example plugin's command and config for plugin check, and
// its timeouts: Python with grpc and cryptography can take seconds to
// start on a loaded machine.
var (
	pythonArgv     = func(t *testing.T) []string { return []string{pythonPlugin(t)} }
	pythonConfig   = `{"path":"{{dir}}/credential.json"}`
	pythonTimeouts = []string{"60s", "30s"}
)

func serveBuiltin(name string) func(t *testing.T) []string {
	return func(*testing.T) []string { return []string{credhostBin, "plugin", "serve", name} }
}

func broken(mode string) func(t *testing.T) []string {
	return func(t *testing.T) []string { return []string{brokenPlugin(t), mode} }
}

// TestPluginCheck runs `credhost plugin check` against each plugin: a
// good one passes every check (exit 0, no FAIL line); a broken one exits 1
// with a FAIL line, on the check it gets wrong, that says what is wrong.
func TestPluginCheck(t *testing.T) {
	t.Parallel()
	for name, tc := range pluginCheckCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			argv := tc.argv(t)
			// A broken plugin's calls are cut at 2s; its start is given
			// 30s (only the one that hangs at start is held to 2s), as a
			// race-enabled build on a loaded machine can take seconds to
			// print its handshake.
			args := []string{"--start-timeout", "30s", "--call-timeout", "2s"}
			if tc.fail == nil {
				args = nil // the defaults, so a loaded machine fails nothing
			}
			if tc.timeouts != nil {
				args = []string{"--start-timeout", tc.timeouts[0], "--call-timeout", tc.timeouts[1]}
			}
			if tc.config != "" {
				args = append(args, "--config", tc.config)
			}
			code, lines, out := runCheck(t, append(os.Environ(), tc.env...), append(append(args, "--"), argv...)...)
			for _, check := range []string{"handshake", "info", "configure-strict", "read-empty", "read-seeded", "save-read", "unsupported", "concurrent-reads", "deadline", "exit"} {
				if _, ok := lines[check]; !ok {
					t.Errorf("no line for check %s", check)
				}
			}
			if tc.fail == nil {
				if code != 0 || strings.Contains(out, "FAIL") {
					t.Fatalf("plugin check: exit %d; want 0 and no FAIL\n%s", code, out)
				}
				return
			}
			if code != 1 {
				t.Errorf("plugin check: exit %d; want 1\n%s", code, out)
			}
			line := lines[tc.fail.check]
			if !strings.HasPrefix(line, "FAIL ") || !regexp.MustCompile(tc.fail.pattern).MatchString(line) {
				t.Errorf("check %s: %q; want FAIL matching %q\n%s", tc.fail.check, line, tc.fail.pattern, out)
			}
		})
	}
}

// TestPluginCheckUsage: the command after --, and a config block that is a
// JSON object, or exit 2 with what to do.
func TestPluginCheckUsage(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no --":          {[]string{"/bin/true"}, "put the plugin command after --"},
		"config array":   {[]string{"--config", "[1]", "--", "/bin/true"}, "--config: want a JSON object"},
		"config garbage": {[]string{"--config", "{", "--", "/bin/true"}, "--config: want a JSON object"},
		"no command":     {[]string{"--"}, "requires at least 1 arg"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(credhostBin, append([]string{"plugin", "check"}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("plugin check %q: %v, %q; want exit 2 saying %q", tc.args, err, out, tc.want)
			}
		})
	}
}
