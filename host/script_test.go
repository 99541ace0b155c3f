//go:build unix

package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shellScript writes a script for /bin/sh (a real interpreter, which opens
// its script by path) that runs pre, then becomes this test binary serving
// the token tok-secret-TAG; it returns the script's sha256.
func shellScript(t *testing.T, path, pre, tag string) string {
	t.Helper()
	script := fmt.Sprintf("%s\nexec %q %s found:%s\n", pre, os.Args[0], helperArg, tag)
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(script))
	return hex.EncodeToString(sum[:])
}

// interpretedConfig is a one-provider config: /bin/sh running script.
func interpretedConfig(script, scriptSum string) *Config {
	cfg := testConfig(true, "notfound")
	pc := &cfg.Providers[0]
	pc.Command, pc.Args, pc.Script, pc.ScriptSHA256 = "/bin/sh", nil, script, scriptSum
	return cfg
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestInterpretedPluginPins: an entry with script: runs its interpreter on
// the script; a pinned script that changed after pinning is refused, and
// so is a changed interpreter when it is pinned too. Status shows the
// script, not the interpreter, as the plugin.
func TestInterpretedPluginPins(t *testing.T) {
	t.Parallel()
	shell := sha256File(t, "/bin/sh")
	tests := map[string]struct {
		pinScript   bool
		interpreter string // the interpreter's pin, "" for none
		change      bool   // rewrite the script after pinning
		wantErr     bool
	}{
		"script pinned":                    {pinScript: true},
		"script and interpreter pinned":    {pinScript: true, interpreter: shell},
		"script not pinned":                {},
		"script changed after pinning":     {pinScript: true, change: true, wantErr: true},
		"unpinned script changed":          {change: true},
		"interpreter pinned, not matching": {pinScript: true, interpreter: strings.Repeat("0", 64), wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			script, marker := filepath.Join(dir, "plugin.sh"), filepath.Join(dir, "changed-ran")
			sum := shellScript(t, script, "", "A")
			if tc.change {
				shellScript(t, script, fmt.Sprintf("echo ran >> %q", marker), "B")
			}
			if !tc.pinScript {
				sum = ""
			}
			cfg := interpretedConfig(script, sum)
			cfg.Providers[0].SHA256 = tc.interpreter
			h, _ := newTestHost(t, cfg)
			res, err := h.Token(context.Background())
			_, ranChanged := os.Stat(marker)
			switch {
			case tc.wantErr:
				if !errors.Is(err, errPinMismatch) {
					t.Fatalf("Token: %v; want a checksum mismatch", err)
				}
				if ranChanged == nil {
					t.Errorf("the changed script ran")
				}
			case err != nil:
				t.Fatalf("Token: %v", err)
			case tc.change && res.Credential.AccessToken != "tok-secret-B":
				t.Errorf("token %q; want the changed, unpinned script's", res.Credential.AccessToken)
			case !tc.change && res.Credential.AccessToken != "tok-secret-A":
				t.Errorf("token %q; want the script's", res.Credential.AccessToken)
			}
			if st := h.Status(context.Background()); st[0].Plugin != script {
				t.Errorf("status shows plugin %q; want the script %q, not the interpreter", st[0].Plugin, script)
			}
		})
	}
}

// TestInterpretedPluginRunsTheVerifiedScript swaps the pinned script for
// another (a rename over its path) after the host verified it and before
// the interpreter starts and opens its script: the interpreter must run the
// verified bytes, never the new ones. Once through Linux's route (the
// verified descriptor, /dev/fd/N) and once through the private copy other
// systems use. Not parallel: the second replaces runFromDescriptor.
func TestInterpretedPluginRunsTheVerifiedScript(t *testing.T) {
	t.Run("descriptor", func(t *testing.T) { testScriptSwap(t) })
	t.Run("private copy", func(t *testing.T) {
		runFromDescriptor = func(*os.File) (string, bool) { return "", false }
		t.Cleanup(func() { runFromDescriptor = fdPath })
		testScriptSwap(t)
	})
}

func testScriptSwap(t *testing.T) {
	dir := t.TempDir()
	script, payload, marker := filepath.Join(dir, "plugin.sh"), filepath.Join(dir, "payload.sh"), filepath.Join(dir, "payload-ran")
	sum := shellScript(t, script, "", "A")
	shellScript(t, payload, fmt.Sprintf("echo ran >> %q", marker), "B")
	swapped := false
	cfg := interpretedConfig(script, sum)
	h, err := New(cfg, func(o *options) {
		o.verified = func() { swapped = os.Rename(payload, script) == nil }
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	res, err := h.Token(context.Background())
	if !swapped {
		t.Fatal("the script was not swapped between its check and the start: the test proved nothing")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the script swapped in after verification ran")
	}
	if err != nil {
		t.Fatalf("Token: %v; want the verified script's token", err)
	}
	if res.Credential.AccessToken != "tok-secret-A" {
		t.Errorf("token %q; want the verified script's, tok-secret-A", res.Credential.AccessToken)
	}
}

// TestModulesPinnedByTreeHash: a module directory pinned by its tree hash
// lets the plugin start, with its path in $CREDHOST_PLUGIN_MODULES; a
// changed, added or removed module, or one others may write, is refused
// before the plugin starts.
func TestModulesPinnedByTreeHash(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		change  func(t *testing.T, dir string)
		wantErr string // "" : it starts
	}{
		"unchanged": {change: func(*testing.T, string) {}},
		"module changed": {change: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "pkg", "util.py"), "def f(): return 2\n", 0o600)
		}, wantErr: "its tree hash is"},
		"module added": {change: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "evil.py"), "import os\n", 0o600)
		}, wantErr: "its tree hash is"},
		"module removed": {change: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "main_lib.py"))
		}, wantErr: "its tree hash is"},
		"module writable by others": {change: func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, "pkg", "util.py"), 0o666)
		}, wantErr: "is writable by group or others"},
		"symlink in the directory": {change: func(t *testing.T, dir string) {
			os.Symlink("/etc/hostname", filepath.Join(dir, "link.py"))
		}, wantErr: "is not a regular file or directory"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			modules := filepath.Join(dir, "lib")
			writeFile(t, filepath.Join(modules, "main_lib.py"), "X = 1\n", 0o600)
			writeFile(t, filepath.Join(modules, "pkg", "util.py"), "def f(): return 1\n", 0o600)
			sum, err := treeHash(modules, checkModuleEntry)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(t, modules)
			script, envFile := filepath.Join(dir, "plugin.sh"), filepath.Join(dir, "modules-env")
			shellScript(t, script, fmt.Sprintf("printf %%s \"$%s\" > %q", modulesEnv, envFile), "A")
			cfg := interpretedConfig(script, "")
			cfg.Providers[0].Modules, cfg.Providers[0].ModulesSHA256 = modules, sum
			h, _ := newTestHost(t, cfg)
			res, err := h.Token(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Token: %v; want an error saying %q", err, tc.wantErr)
				}
				if _, serr := os.Stat(envFile); serr == nil {
					t.Errorf("the plugin ran despite its modules failing their check")
				}
				return
			}
			if err != nil || res.Credential.AccessToken != "tok-secret-A" {
				t.Fatalf("Token: %v, %q; want the plugin's token", err, res.Credential.AccessToken)
			}
			if got, _ := os.ReadFile(envFile); string(got) != modules {
				t.Errorf("$%s in the plugin: %q; want %q", modulesEnv, got, modules)
			}
		})
	}
}

// TestTreeHashIsTheDocumentedCommand: treeHash agrees with the shell
// command config.example.yaml gives for modules_sha256.
func TestTreeHashIsTheDocumentedCommand(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"find", "sort", "xargs", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	for name, content := range map[string]string{
		"a.py": "a\n", "a/b.py": "b\n", "a.b/c.py": "c\n", "B.py": "B\n", "z/y/x.txt": "", "space name.py": "s\n",
	} {
		writeFile(t, filepath.Join(dir, name), content, 0o600)
	}
	os.MkdirAll(filepath.Join(dir, "empty"), 0o700)
	got, err := treeHash(dir, func(string, string, fs.FileInfo) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want, _, _ := strings.Cut(string(out), " "); got != want {
		t.Errorf("treeHash %s; the documented command says %s", got, want)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
}

// TestScriptAndModulesPathsResolveAsCommand: script and modules are made
// absolute as command is (~ is the home directory, a relative path is
// taken from the config file's directory), and pins are lower-cased.
func TestScriptAndModulesPathsResolveAsCommand(t *testing.T) {
	t.Parallel()
	yaml := "version: 1\nproviders:\n  - {name: corp, command: /usr/bin/python3, script: lib/sts.py, script_sha256: " +
		strings.Repeat("AB", 32) + ", modules: ~/corp/modules, modules_sha256: " + strings.Repeat("cd", 32) + "}\n"
	cfg, err := ParseConfig([]byte(yaml), "/etc/credhost/config.yaml", env(map[string]string{"HOME": "/home/u"}))
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.Providers[0]
	if pc.Script != "/etc/credhost/lib/sts.py" || pc.Modules != "/home/u/corp/modules" {
		t.Errorf("script %q, modules %q; want /etc/credhost/lib/sts.py and /home/u/corp/modules", pc.Script, pc.Modules)
	}
	if pc.ScriptSHA256 != strings.Repeat("ab", 32) {
		t.Errorf("script_sha256 %q; want it lower-cased", pc.ScriptSHA256)
	}
}

// TestDoctorChecksScriptAndModulesPins: doctor checks a script's pin and
// its modules' tree hash before starting anything, names the script as the
// plugin, and says which pin to set.
func TestDoctorChecksScriptAndModulesPins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script, modules := filepath.Join(dir, "plugin.sh"), filepath.Join(dir, "lib")
	writeFile(t, filepath.Join(modules, "m.py"), "X = 1\n", 0o600)
	now, err := treeHash(modules, checkModuleEntry)
	if err != nil {
		t.Fatal(err)
	}
	sum := shellScript(t, script, "", "A")
	for name, tc := range map[string]struct {
		scriptSum, modulesSum string
		wantFix               string
	}{
		"script changed":  {scriptSum: strings.Repeat("0", 64), modulesSum: now, wantFix: "set script_sha256: " + sum},
		"modules changed": {scriptSum: sum, modulesSum: strings.Repeat("0", 64), wantFix: "set modules_sha256: " + now},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := interpretedConfig(script, tc.scriptSum)
			cfg.Providers[0].Modules, cfg.Providers[0].ModulesSHA256 = modules, tc.modulesSum
			h, _ := newTestHost(t, cfg)
			r := h.Doctor(context.Background())[0]
			if r.Plugin != script {
				t.Errorf("doctor names plugin %q; want the script %q", r.Plugin, script)
			}
			if len(r.Findings) != 1 || !strings.Contains(r.Findings[0].Fix, tc.wantFix) {
				t.Errorf("findings %+v; want one whose fix says %q", r.Findings, tc.wantFix)
			}
		})
	}
}
