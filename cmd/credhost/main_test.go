package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// credhostBin is the real binary, built once for these tests as the README
// builds it (goBuild): the built-in plugins run as subprocesses of it,
// exactly as for a user.
var credhostBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "credhost-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	credhostBin = filepath.Join(dir, "credhost")
	build := goBuild(credhostBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build credhost:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Secrets used by these tests; none may ever appear in stderr or status.
const (
	fileAccess   = "sk-ant-oat01-file-access-SECRET"
	fileRefresh  = "sk-ant-ort01-file-refresh-SECRET"
	oauthEnvTok  = "sk-ant-oat01-oauth-env-SECRET"
	enterpriseTk = "enterprise-token-SECRET"
)

// sandbox is a HOME of its own with a clean environment, so the embedded
// default chain reads only what a test puts there.
type sandbox struct {
	t    *testing.T
	home string
	env  []string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	home := t.TempDir()
	return &sandbox{t: t, home: home, env: newSandboxEnv(home)}
}

// newSandboxEnv is a clean environment around home.
func newSandboxEnv(home string) []string {
	return []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		// No session bus: the keychain provider must report not-found.
		"DBUS_SESSION_BUS_ADDRESS=",
	}
}

func (s *sandbox) setenv(kv ...string) { s.env = append(s.env, kv...) }

// writeCredentials writes the Claude Code credentials file.
func (s *sandbox) writeCredentials(content string) string {
	s.t.Helper()
	dir := filepath.Join(s.home, ".claude")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(dir, ".credentials.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

func (s *sandbox) writeConfig(content string) string {
	s.t.Helper()
	path := filepath.Join(s.home, "credhost.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

type result struct {
	stdout, stderr string
	code           int
}

func (s *sandbox) run(args ...string) result {
	s.t.Helper()
	cmd := exec.Command(credhostBin, args...)
	cmd.Env = s.env
	cmd.Dir = s.home
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("run credhost: %v", err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func validCredentials(expiresAt time.Time) string {
	return fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,"scopes":["user:inference"],"subscriptionType":"max"},"other":{"keep":true}}`,
		fileAccess, fileRefresh, expiresAt.UnixMilli())
}

// modes are the two ways built-ins run: in the credhost process, and as
// plugin processes of it (CREDHOST_BUILTIN in the embedded default).
var modes = []string{"in-process", "process"}

// inModes runs test once per mode, as parallel subtests.
func inModes(t *testing.T, test func(t *testing.T, mode string)) {
	t.Helper()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			test(t, mode)
		})
	}
}

func TestTokenPriority(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env          []string
		file         bool
		wantToken    string
		wantProvider string
	}{
		"enterprise beats everything": {
			env: []string{"ANTHROPIC_AUTH_TOKEN=" + enterpriseTk, "CLAUDE_CODE_OAUTH_TOKEN=" + oauthEnvTok}, file: true,
			wantToken: enterpriseTk, wantProvider: "enterprise",
		},
		"oauth env beats the stores": {
			env: []string{"CLAUDE_CODE_OAUTH_TOKEN=" + oauthEnvTok}, file: true,
			wantToken: oauthEnvTok, wantProvider: "oauth-env",
		},
		"empty variables are skipped": {
			env: []string{"ANTHROPIC_AUTH_TOKEN=", "CLAUDE_CODE_OAUTH_TOKEN="}, file: true,
			wantToken: fileAccess, wantProvider: "file",
		},
		"file when nothing else": {
			file: true, wantToken: fileAccess, wantProvider: "file",
		},
	}
	for name, tc := range tests {
		for _, mode := range modes {
			t.Run(name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				s := newSandbox(t)
				s.setenv(tc.env...)
				s.setenv("CREDHOST_BUILTIN=" + mode)
				expires := time.Now().Add(3 * time.Hour).Truncate(time.Millisecond)
				if tc.file {
					s.writeCredentials(validCredentials(expires))
				}
				r := s.run("token")
				if r.code != 0 || r.stdout != tc.wantToken+"\n" {
					t.Fatalf("token: exit %d, stdout %d bytes; want exit 0 and the %s token; stderr:\n%s", r.code, len(r.stdout), tc.wantProvider, r.stderr)
				}
				assertNoSecret(t, "stderr", r.stderr)

				r = s.run("token", "--json")
				var got struct {
					AccessToken string     `json:"access_token"`
					ExpiresAt   *time.Time `json:"expires_at"`
					Provider    string     `json:"provider"`
					Refreshed   *bool      `json:"refreshed"`
					Degraded    *bool      `json:"degraded"`
				}
				if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
					t.Fatalf("token --json: exit %d, %v; stderr:\n%s", r.code, err, r.stderr)
				}
				if got.AccessToken != tc.wantToken || got.Provider != tc.wantProvider || got.Refreshed == nil || got.Degraded == nil || *got.Degraded {
					t.Errorf("token --json: provider %q refreshed %v degraded %v; want %q, false, false", got.Provider, got.Refreshed, got.Degraded, tc.wantProvider)
				}
				if tc.wantProvider == "file" && (got.ExpiresAt == nil || !got.ExpiresAt.Equal(expires)) {
					t.Errorf("token --json: expires_at %v; want %v", got.ExpiresAt, expires)
				}
				if tc.wantProvider != "file" && got.ExpiresAt != nil {
					t.Errorf("token --json: expires_at %v for an env token; want null (unknown)", got.ExpiresAt)
				}
			})
		}
	}
}

func TestNothingFound(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s := newSandbox(t)
		s.setenv("CREDHOST_BUILTIN=" + mode)
		r := s.run("token")
		if r.code != 1 || r.stdout != "" {
			t.Fatalf("token with nothing anywhere: exit %d, stdout %q; want exit 1 and no stdout", r.code, r.stdout)
		}
		wants := []string{
			"enterprise (empty): $ANTHROPIC_AUTH_TOKEN is not set",
			"oauth-env (empty): $CLAUDE_CODE_OAUTH_TOKEN is not set",
			"file (empty)", filepath.Join(s.home, ".claude", ".credentials.json"),
			"to fix:",
		}
		if runtime.GOOS == "darwin" {
			wants = append(wants, "keychain (empty)", "unlock the login keychain")
		} else if strings.Contains(r.stderr, "keychain") || strings.Contains(r.stderr, "Secret Service") {
			t.Errorf("the hint names a keychain the default chain on %s does not use:\n%s", runtime.GOOS, r.stderr)
		}
		for _, want := range wants {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
			}
		}
	})
}

func TestBrokenFileIsSkippedAndUntouched(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"malformed JSON": `{"claudeAiOauth": {"accessToken": "` + fileAccess + `",`,
		"wrong types":    `{"claudeAiOauth": {"accessToken": 12345, "refreshToken": "` + fileRefresh + `"}}`,
		"array root":     `["` + fileAccess + `"]`,
	}
	for name, content := range tests {
		for _, mode := range modes {
			t.Run(name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				s := newSandbox(t)
				s.setenv("CREDHOST_BUILTIN=" + mode)
				path := s.writeCredentials(content)
				before, _ := os.Stat(path)
				r := s.run("token", "--log-level", "trace")
				if r.code != 1 {
					t.Fatalf("token: exit %d; want 1 (the only store is broken); stderr:\n%s", r.code, r.stderr)
				}
				if !strings.Contains(r.stderr, "file (error): "+path) {
					t.Errorf("stderr does not name the broken file as an error:\n%s", r.stderr)
				}
				assertNoSecret(t, "stderr", r.stderr)
				after, err := os.ReadFile(path)
				if err != nil || string(after) != content {
					t.Errorf("the credentials file changed")
				}
				if st, _ := os.Stat(path); !st.ModTime().Equal(before.ModTime()) || st.Mode() != before.Mode() {
					t.Errorf("the credentials file's mtime or mode changed")
				}
			})
		}
	}
}

func TestConfigErrorsExit2(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		config string // written to a file and passed with --config, if set
		env    []string
		args   []string
		want   []string
	}{
		"unknown key": {
			config: "version: 1\nproviders:\n  - name: f\n    plugin: file\n    pathh: /x\n",
			want:   []string{"credhost.yaml:5:5", "providers[0].pathh"},
		},
		"negative buffer from the environment": {
			env:  []string{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS=-5"},
			want: []string{"embedded default", "refresh.buffer", `"${CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS:-600}" is negative`},
		},
		"unparsable buffer": {
			config: "version: 1\nrefresh: {buffer: soon}\nproviders:\n  - {name: f, plugin: file}\n",
			want:   []string{"credhost.yaml:2:19", "refresh.buffer", `"soon"`},
		},
		"unknown built-in": {
			config: "version: 1\nproviders:\n  - {name: f, plugin: vault}\n",
			want:   []string{"credhost.yaml:3:5", `no built-in plugin "vault"`},
		},
		"provider config rejected by the plugin is not exit 2 but a fault": {
			config: "version: 1\nproviders:\n  - {name: f, plugin: file, config: {pth: x}}\n",
			want:   []string{`f (error): configure: provider "f": unknown key "pth"`},
		},
		"missing config file": {
			args: []string{"--config", "/nonexistent/credhost.yaml"},
			want: []string{"/nonexistent/credhost.yaml"},
		},
		"unknown flag": {
			args: []string{"--bogus"},
			want: []string{"unknown flag: --bogus"},
		},
		"bad log level": {
			args: []string{"--log-level", "loud"},
			want: []string{`--log-level "loud"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.setenv(tc.env...)
			args := append([]string{"token"}, tc.args...)
			if tc.config != "" {
				args = append(args, "--config", s.writeConfig(tc.config))
			}
			r := s.run(args...)
			wantCode := 2
			if strings.HasPrefix(name, "provider config rejected") {
				wantCode = 1
			}
			if r.code != wantCode {
				t.Errorf("exit %d; want %d; stderr:\n%s", r.code, wantCode, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

func TestStatusNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s := newSandbox(t)
		s.setenv("CREDHOST_BUILTIN="+mode, "ANTHROPIC_AUTH_TOKEN="+enterpriseTk, "CLAUDE_CODE_OAUTH_TOKEN="+oauthEnvTok)
		s.writeCredentials(validCredentials(time.Now().Add(2 * time.Minute)))

		r := s.run("status", "--log-level", "trace")
		if r.code != 0 {
			t.Fatalf("status: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		assertNoSecret(t, "status stdout", r.stdout)
		assertNoSecret(t, "status stderr", r.stderr)
		// The embedded default has a keychain row on macOS only, where
		// Claude Code keeps its login there (empty in this sandbox).
		wants, rows := []string{"enterprise", "oauth-env", "file", "found", "(needs refresh)"}, 3
		if runtime.GOOS == "darwin" {
			wants, rows = append(wants, "keychain", "empty"), 4
		} else if strings.Contains(r.stdout, "keychain") {
			t.Errorf("status shows a keychain row on %s, where Claude Code keeps no keychain item:\n%s", runtime.GOOS, r.stdout)
		}
		for _, want := range wants {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("status lacks %q:\n%s", want, r.stdout)
			}
		}

		r = s.run("status", "--json", "--log-level", "trace", "--log-format", "json")
		assertNoSecret(t, "status --json stdout", r.stdout)
		assertNoSecret(t, "status --json stderr", r.stderr)
		var got struct {
			Providers []struct {
				Name, State, Fingerprint string
				Refreshable              bool
				NeedsRefresh             bool `json:"needs_refresh"`
				ExpiresIn                *int `json:"expires_in_seconds"`
			} `json:"providers"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.stdout)
		}
		if len(got.Providers) != rows {
			t.Fatalf("status --json: %d providers; want %d", len(got.Providers), rows)
		}
		file := got.Providers[rows-1]
		if file.Name != "file" || file.State != "found" || file.Fingerprint == "" || !file.NeedsRefresh ||
			file.ExpiresIn == nil || *file.ExpiresIn <= 0 || *file.ExpiresIn > 120 {
			t.Errorf("status --json file row: %+v; want found, a fingerprint, 0 < expires_in <= 120, needs_refresh\n%s", file, r.stdout)
		}
		for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			if line != "" && !json.Valid([]byte(line)) {
				t.Errorf("--log-format json wrote a non-JSON line: %q", line)
			}
		}
	})
}

func TestTokenTraceLogsHoldNoSecret(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s := newSandbox(t)
		s.setenv("CREDHOST_BUILTIN=" + mode)
		s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
		r := s.run("token", "--log-level", "trace")
		if r.code != 0 || r.stdout != fileAccess+"\n" {
			t.Fatalf("token: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "credential found") {
			t.Errorf("trace log lacks the 'credential found' line; is the level applied?\n%s", r.stderr)
		}
		assertNoSecret(t, "stderr", r.stderr)
	})
}

func assertNoSecret(t *testing.T, where, s string) {
	t.Helper()
	for _, secret := range []string{fileAccess, fileRefresh, oauthEnvTok, enterpriseTk, "SECRET"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a secret (%s…):\n%s", where, secret[:8], s)
		}
	}
}
