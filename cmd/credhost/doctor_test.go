package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestDoctor(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s := newSandbox(t)
		s.setenv("CREDHOST_BUILTIN=" + mode)
		path := s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))

		r := s.run("doctor")
		if r.code != 0 || !strings.Contains(r.stdout, "holds a credential") || strings.Contains(r.stdout, "error") {
			t.Fatalf("healthy setup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		assertNoSecret(t, "doctor", r.stdout+r.stderr)

		os.Chmod(path, 0o644)
		os.Chmod(filepath.Dir(path), 0o755)
		r = s.run("doctor", "--json")
		var got struct {
			Config    string
			Providers []struct {
				Provider string
				Findings []struct{ Severity, Message, Fix string }
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
		}
		// The embedded default has a keychain row on macOS only.
		rows := 3
		if runtime.GOOS == "darwin" {
			rows = 4
		}
		if r.code != 1 || got.Config != "embedded default" || len(got.Providers) != rows {
			t.Fatalf("exit %d, %+v; want exit 1 and %d providers", r.code, got, rows)
		}
		fixes := fmt.Sprint(got.Providers[rows-1].Findings)
		if got.Providers[rows-1].Provider != "file" || !strings.Contains(fixes, "chmod 600 "+path) || !strings.Contains(fixes, "chmod 700 "+filepath.Dir(path)) {
			t.Errorf("file findings lack the chmod fixes: %s", fixes)
		}
		assertNoSecret(t, "doctor --json", r.stdout+r.stderr)
	})
}

func TestDoctorRefusesAMismatchedPin(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	bin := filepath.Join(s.home, "plugin")
	os.WriteFile(bin, []byte("#!/bin/sh\ntouch "+filepath.Join(s.home, "ran")+"\n"), 0o700)
	config := s.writeConfig(fmt.Sprintf("version: 1\nproviders:\n  - {name: corp, command: %s, sha256: %s}\n", bin, strings.Repeat("0", 64)))
	r := s.run("doctor", "--config", config)
	if r.code != 1 || !strings.Contains(r.stdout, "the config pins 0000") || !strings.Contains(r.stdout, "fix: if you trust this binary") {
		t.Errorf("exit %d; want 1 with the actual sha256 and a fix\n%s", r.code, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(s.home, "ran")); err == nil {
		t.Errorf("doctor ran a plugin whose pin does not match")
	}
}

// TestDoctorWarnsOfTheWrongDoorForClaudeCode writes a real Claude Code
// settings.json in a temporary HOME (or $CLAUDE_CONFIG_DIR) and checks
// doctor's integration findings: a warning when apiKeyHelper runs credhost
// and credhost would serve an OAuth token, none for an enterprise token;
// a warning when refresh.buffer is not longer than Claude Code's refresh
// window and apiKeyHelper cache. Warnings are not errors: exit 0.
func TestDoctorWarnsOfTheWrongDoorForClaudeCode(t *testing.T) {
	t.Parallel()
	const helper = `{"apiKeyHelper": "/usr/local/bin/credhost token --strict"}`
	tests := map[string]struct {
		settings  string
		configDir bool // settings in $CLAUDE_CONFIG_DIR instead of ~/.claude
		env       []string
		want      []string // substrings of warning messages
		notWant   []string
	}{
		"helper would serve the file's OAuth login": {
			settings: helper, want: []string{`runs credhost, which would serve an OAuth token (from provider "file")`},
		},
		"helper in CLAUDE_CONFIG_DIR": {
			settings: helper, configDir: true, want: []string{"would serve an OAuth token"},
		},
		"helper serves an enterprise token": {
			settings: helper, env: []string{"ANTHROPIC_AUTH_TOKEN=" + enterpriseTk},
			notWant: []string{"would serve an OAuth token"},
		},
		"an OAuth token in the enterprise variable": {
			settings: helper, env: []string{"ANTHROPIC_AUTH_TOKEN=sk-ant-oat01-misplaced-SECRET"},
			want: []string{`would serve an OAuth token (from provider "enterprise")`},
		},
		"helper that is not credhost": {
			settings: `{"apiKeyHelper": "/opt/vault/get-key"}`, notWant: []string{"apiKeyHelper"},
		},
		"no settings": {notWant: []string{"apiKeyHelper", "refresh.buffer is"}},
		"buffer equal to the refresh window": {
			env: []string{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS=300"}, want: []string{"refresh.buffer is 5m0s, not longer than Claude Code's own refresh window (5m0s before expiry) and its apiKeyHelper cache (5m0s, default)"},
		},
		"helper TTL from settings env": {
			settings: `{"env": {"CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "900000"}}`,
			want:     []string{"refresh.buffer is 10m0s, not longer", "apiKeyHelper cache (15m0s, env in"},
		},
		"helper TTL from the environment": {
			env: []string{"CLAUDE_CODE_API_KEY_HELPER_TTL_MS=720000"}, want: []string{"apiKeyHelper cache (12m0s, $CLAUDE_CODE_API_KEY_HELPER_TTL_MS)"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.setenv(tc.env...)
			s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
			if tc.settings != "" {
				dir := filepath.Join(s.home, ".claude")
				if tc.configDir {
					dir = filepath.Join(s.home, "claude-config")
					s.setenv("CLAUDE_CONFIG_DIR=" + dir)
					os.MkdirAll(dir, 0o700)
					os.WriteFile(filepath.Join(dir, ".credentials.json"), []byte(validCredentials(time.Now().Add(time.Hour))), 0o600)
				}
				if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte(tc.settings), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := s.run("doctor", "--json")
			var got struct {
				Integration struct {
					Findings []struct{ Severity, Message, Fix string }
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("doctor --json: %v\n%s%s", err, r.stdout, r.stderr)
			}
			if r.code != 0 {
				t.Errorf("exit %d; warnings must not fail doctor\n%s", r.code, r.stdout)
			}
			var warnings []string
			for _, f := range got.Integration.Findings {
				if f.Severity == "warning" {
					warnings = append(warnings, f.Message+" | fix: "+f.Fix)
				}
			}
			all := strings.Join(warnings, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("warnings lack %q:\n%s", w, all)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(all, w) {
					t.Errorf("warnings hold %q:\n%s", w, all)
				}
			}
			if strings.Contains(all, "OAuth token (from") && !strings.Contains(all, "credhost exec -- claude") {
				t.Errorf("the OAuth warning does not say to use credhost exec:\n%s", all)
			}
			assertNoSecret(t, "doctor --json", r.stdout+r.stderr)
			if strings.Contains(r.stdout, "misplaced-SECRET") {
				t.Errorf("doctor printed a token")
			}
		})
	}
}
