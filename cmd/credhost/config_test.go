package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// `credhost config` names the file in force and why, and lists the chain
// with commands as status shows them (a path is shown expanded, a secret
// ${VAR} never is) and config keys without values; args are not shown.
func TestConfigCommandShowsSourceAndProvidersWithoutSecrets(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	const literal = "literal-SECRET-in-config"
	s.setenv("CORP_DIR="+filepath.Join(s.home, "corp"), "CORP_TOKEN=sk-ant-oat01-from-env-SECRET")
	cfg := s.writeConfig(`version: 1
providers:
  - {name: env-tok, plugin: env, config: {var: CLAUDE_CODE_OAUTH_TOKEN}, refresh_with: [file]}
  - {name: file, plugin: file, config: {path: "${HOME}/creds.json", key: claudeAiOauth}}
  - name: corp
    command: ${CORP_DIR}/credhost-plugin-sts
    args: ["--token=${CORP_TOKEN}"]
    config: {client_secret: ` + literal + `, token: "${CORP_TOKEN}"}
`)
	r := s.run("config", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("config: exit %d\n%s", r.code, r.stderr)
	}
	assertNoSecret(t, "config stdout", r.stdout)
	for _, want := range []string{
		"config: " + cfg + " (--config)",
		"corp", filepath.Join(s.home, "corp", "credhost-plugin-sts"), "client_secret,token",
		"env-tok", "file", "key,path",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = s.run("config", "--json", "--config", cfg)
	assertNoSecret(t, "config --json stdout", r.stdout)
	var got struct {
		Source, Origin string
		Providers      []struct {
			Name, Plugin, Command string
			ConfigKeys            []string `json:"config_keys"`
			RefreshWith           []string `json:"refresh_with"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("config --json: %v\n%s", err, r.stdout)
	}
	if got.Source != cfg || got.Origin != "--config" || len(got.Providers) != 3 {
		t.Fatalf("config --json = %+v; want %s from --config with 3 providers", got, cfg)
	}
	if p := got.Providers[2]; p.Command != filepath.Join(s.home, "corp", "credhost-plugin-sts") || strings.Join(p.ConfigKeys, ",") != "client_secret,token" {
		t.Errorf("corp = %+v; want the command as status shows it and the key names only", p)
	}
	if p := got.Providers[0]; p.Plugin != "env" || strings.Join(p.RefreshWith, ",") != "file" {
		t.Errorf("env-tok = %+v", p)
	}

	// Without --config or a user config, the embedded default (this
	// sandbox has no system config at the test's path).
	s2 := newSandbox(t)
	if r := s2.run("config"); r.code != 0 || !strings.Contains(r.stdout, "config: embedded default\n") {
		t.Errorf("config in an empty sandbox: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A broken config is a config error, exit 2, with its place.
	bad := s.writeConfig("version: 1\nproviders: [{name: x, plugin: file, nope: 1}]\n")
	if r := s.run("config", "--config", bad); r.code != 2 || !strings.Contains(r.stderr, `unknown key "nope"`) {
		t.Errorf("config of a bad file: exit %d; stderr %q; want 2 naming the key", r.code, r.stderr)
	}
}

// The system config is used when no user config exists, and a user config
// wins over it. (In-process: tests cannot write /etc, and no flag or
// variable moves the system config, so the test sets the package's
// path.)
func TestConfigCommandUsesTheSystemConfigWithoutAUserConfig(t *testing.T) {
	home := t.TempDir()
	sysDir := filepath.Join(t.TempDir(), "credhost")
	if err := os.Mkdir(sysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sys := filepath.Join(sysDir, "config.yaml")
	if err := os.WriteFile(sys, []byte("version: 1\nproviders:\n  - {name: corp-system, plugin: file}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	systemConfigPath = sys
	t.Cleanup(func() { systemConfigPath = "" })
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("CREDHOST_CONFIG", "")

	var out, errOut bytes.Buffer
	if code := run([]string{"config"}, &out, &errOut); code != 0 {
		t.Fatalf("config: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "config: "+sys+" (system config)") || !strings.Contains(out.String(), "corp-system") {
		t.Errorf("config without a user config:\n%s; want the system config %s in force", out.String(), sys)
	}

	user := filepath.Join(home, ".config", "credhost", "config.yaml")
	os.MkdirAll(filepath.Dir(user), 0o700)
	if err := os.WriteFile(user, []byte("version: 1\nproviders:\n  - {name: mine, plugin: file}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"config"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "config: "+user+" (user config)") {
		t.Errorf("config with a user config: exit %d\n%s; want the user config in force", code, out.String())
	}

	// One another user could rewrite is refused, exit 2, with the fix.
	os.Remove(user)
	if err := os.Chmod(sys, 0o666); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"config"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "writable by group or others") || !strings.Contains(errOut.String(), "chmod go-w") {
		t.Errorf("config with a world-writable system config: exit %d\n%s; want 2 and the fix", code, errOut.String())
	}
}

// `credhost --version` says what is deployed: the module version, the VCS
// revision the binary was built from, and the Go version, as the build
// info (`go version -m`) has them.
func TestVersionPrintsModuleAndRevision(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	r := s.run("--version")
	if r.code != 0 || !regexp.MustCompile(`^credhost \S+ .*go1\.\d+`).MatchString(r.stdout) {
		t.Fatalf("--version: exit %d, %q; want credhost VERSION ... goX", r.code, r.stdout)
	}
	out, err := exec.Command("go", "version", "-m", credhostBin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	var mod, rev string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			mod = f[2]
		case len(f) >= 2 && strings.HasPrefix(f[1], "vcs.revision="):
			rev = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	if mod == "" || !strings.Contains(r.stdout, mod) {
		t.Errorf("--version %q lacks the module version %q", r.stdout, mod)
	}
	if rev == "" {
		t.Log("the test binary carries no VCS revision (built outside a checkout?)")
	} else if !strings.Contains(r.stdout, "revision "+rev) {
		t.Errorf("--version %q lacks the revision %s", r.stdout, rev)
	}
}

func TestVersionOfBuildInfo(t *testing.T) {
	t.Parallel()
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := map[string]struct {
		bi   *debug.BuildInfo
		want string
	}{
		"release": {&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}},
			"v1.4.0 (revision " + rev + ") go1.26.8"},
		"modified checkout": {&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.1-0.20261129070000-0123456789ab+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}},
			"v1.4.1-0.20261129070000-0123456789ab+dirty (revision " + rev + ", modified) go1.26.8"},
		"no VCS":        {&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "(devel) go1.26.8"},
		"no build info": {nil, "unknown (built without module information)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := versionOf(tc.bi, tc.bi != nil); got != tc.want {
				t.Errorf("versionOf = %q; want %q", got, tc.want)
			}
		})
	}
}

// Administrators see which plugin, at which version, serves each
// provider: its Info, in status --json and in doctor, built-ins in-process
// and as plugin processes alike.
func TestStatusAndDoctorShowPluginNameAndVersion(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s := newSandbox(t)
		s.setenv("CREDHOST_BUILTIN=" + mode)
		s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))

		r := s.run("status", "--json")
		var st struct {
			Providers []struct {
				Name          string
				PluginName    string `json:"plugin_name"`
				PluginVersion string `json:"plugin_version"`
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.stdout)
		}
		plugins := map[string]string{}
		for _, p := range st.Providers {
			plugins[p.Name] = p.PluginName + " " + p.PluginVersion
		}
		if plugins["file"] != "file 1" || plugins["enterprise"] != "env 1" {
			t.Errorf("status --json plugins = %v; want file 1 and env 1", plugins)
		}

		r = s.run("doctor", "--json")
		var doc struct {
			Providers []struct {
				Provider      string
				PluginName    string `json:"plugin_name"`
				PluginVersion string `json:"plugin_version"`
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
		}
		for _, p := range doc.Providers {
			if p.Provider == "file" && (p.PluginName != "file" || p.PluginVersion != "1") {
				t.Errorf("doctor --json file = %+v; want plugin file 1", p)
			}
		}
		if r := s.run("doctor"); !strings.Contains(r.stdout, "file (file): plugin file 1") {
			t.Errorf("doctor does not show the plugin's name and version:\n%s", r.stdout)
		}
	})
}
