package host

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandNeverResolvesAgainstTheWorkingDirectory: an external plugin's
// command is absolute after ~ expansion, or taken from the config file's
// directory; in the embedded default a relative command is an error. The
// working directory (a project Claude Code runs its apiKeyHelper in) is
// never consulted, even when it holds a ./plugin.
func TestCommandNeverResolvesAgainstTheWorkingDirectory(t *testing.T) {
	cwd := t.TempDir()
	if err := os.WriteFile(filepath.Join(cwd, "plugin"), []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cwd)
	home, confDir := t.TempDir(), t.TempDir()
	source := filepath.Join(confDir, "config.yaml")
	tests := map[string]struct {
		command string
		source  string
		want    string // the resolved command; "" : a config error
		wantMsg string
	}{
		"absolute":                 {command: "/opt/corp/plugin", source: source, want: "/opt/corp/plugin"},
		"tilde":                    {command: "~/bin/plugin", source: source, want: filepath.Join(home, "bin", "plugin")},
		"dot-slash":                {command: "./plugin", source: source, want: filepath.Join(confDir, "plugin")},
		"bare name":                {command: "plugin", source: source, want: filepath.Join(confDir, "plugin")},
		"dot-dot":                  {command: "../bin/plugin", source: source, want: filepath.Join(filepath.Dir(confDir), "bin", "plugin")},
		"relative in the default":  {command: "./plugin", source: DefaultSource, wantMsg: "is relative; the embedded default has no directory"},
		"bare name in the default": {command: "plugin", source: DefaultSource, wantMsg: "is relative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			yaml := "version: 1\nproviders:\n  - name: corp\n    command: " + tc.command + "\n"
			cfg, err := ParseConfig([]byte(yaml), tc.source, env(map[string]string{"HOME": home}))
			if tc.want == "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Key != "providers[0].command" || ce.Line != 4 || !strings.Contains(ce.Msg, tc.wantMsg) {
					t.Fatalf("got %v; want a config error at line 4 on providers[0].command saying %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Providers[0].Command; got != tc.want {
				t.Errorf("command %q resolved to %q; want %q", tc.command, got, tc.want)
			}
		})
	}
}

// TestProviderEnvNamesAreVariableNames: env: lists variable names, each
// checked where it stands.
func TestProviderEnvNamesAreVariableNames(t *testing.T) {
	t.Parallel()
	yaml := "version: 1\nproviders:\n  - name: corp\n    command: /opt/p\n    env: [AWS_PROFILE, HTTPS-PROXY]\n"
	_, err := ParseConfig([]byte(yaml), "test.yaml", nil)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "providers[0].env[1]" || ce.Line != 5 || ce.Column != 24 || !strings.Contains(ce.Msg, `"HTTPS-PROXY" is not an environment variable name`) {
		t.Fatalf("got %v; want a config error at test.yaml:5:24 on providers[0].env[1]", err)
	}
	cfg, err := ParseConfig([]byte(strings.Replace(yaml, "HTTPS-PROXY", "HTTPS_PROXY", 1)), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Providers[0].Env; len(got) != 2 || got[1] != "HTTPS_PROXY" {
		t.Errorf("env %v; want [AWS_PROFILE HTTPS_PROXY]", got)
	}
}

// TestCommandWithTildeUserIsAConfigError: `~user/x` names another user's
// home, which credhost does not look up; it is a config error at the
// command, not a directory named "~user" beside the config file.
func TestCommandWithTildeUserIsAConfigError(t *testing.T) {
	source := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "version: 1\nproviders:\n  - name: corp\n    command: ~root/bin/plugin\n"
	_, err := ParseConfig([]byte(yaml), source, env(map[string]string{"HOME": t.TempDir()}))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "providers[0].command" || ce.Line != 4 || !strings.Contains(ce.Msg, "~root") {
		t.Fatalf("got %v; want a config error at line 4 on providers[0].command naming ~root", err)
	}
}
