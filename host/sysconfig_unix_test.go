//go:build unix

package host

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The system config chooses the plugins of every user of the machine: one
// that another user could rewrite, or that another user owns, is refused
// with the fix, never read; one only root (or this user) may change is
// read.
func TestSystemConfigRefusedWhenOthersMayChangeIt(t *testing.T) {
	t.Parallel()
	const body = "version: 1\nproviders:\n  - {name: from-system, plugin: file}\n"
	tests := map[string]struct {
		fileMode, dirMode os.FileMode
		fileUID, dirUID   int // -1: leave as created
		fifo, symlink     bool
		wantErr           string // empty: loads
	}{
		"owner-writable file and directory": {fileMode: 0o644, dirMode: 0o755, fileUID: -1, dirUID: -1},
		"read-only file":                    {fileMode: 0o444, dirMode: 0o755, fileUID: -1, dirUID: -1},
		"through a symlink":                 {fileMode: 0o644, dirMode: 0o755, fileUID: -1, dirUID: -1, symlink: true},
		"group-writable file":               {fileMode: 0o664, dirMode: 0o755, fileUID: -1, dirUID: -1, wantErr: "config.yaml is writable by group or others (mode 0664)"},
		"world-writable file":               {fileMode: 0o646, dirMode: 0o755, fileUID: -1, dirUID: -1, wantErr: "writable by group or others (mode 0646)"},
		"group-writable directory":          {fileMode: 0o644, dirMode: 0o775, fileUID: -1, dirUID: -1, wantErr: "its directory"},
		"world-writable directory":          {fileMode: 0o644, dirMode: 0o777, fileUID: -1, dirUID: -1, wantErr: "(mode 0777)"},
		"file owned by another user":        {fileMode: 0o644, dirMode: 0o755, fileUID: 65534, dirUID: -1, wantErr: "is owned by uid 65534, not root"},
		"directory owned by another user":   {fileMode: 0o644, dirMode: 0o755, fileUID: -1, dirUID: 65534, wantErr: "its directory"},
		"a FIFO":                            {fileMode: 0o644, dirMode: 0o755, fileUID: -1, dirUID: -1, fifo: true, wantErr: "is not a regular file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if (tc.fileUID >= 0 || tc.dirUID >= 0) && os.Geteuid() != 0 {
				t.Skip("giving a file to another user needs root (CI runs as root)")
			}
			dir := filepath.Join(t.TempDir(), "credhost")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "config.yaml")
			if tc.fifo {
				if err := syscall.Mkfifo(path, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			if tc.fileUID >= 0 {
				if err := os.Chown(path, tc.fileUID, -1); err != nil {
					t.Fatal(err)
				}
			}
			if tc.dirUID >= 0 {
				if err := os.Chown(dir, tc.dirUID, -1); err != nil {
					t.Fatal(err)
				}
			}
			load := path
			if tc.symlink {
				load = filepath.Join(t.TempDir(), "link.yaml")
				if err := os.Symlink(path, load); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := LoadConfig(LoadOptions{SystemPath: load, LookupEnv: env(nil), UserHomeDir: func() (string, error) { return "", nil }})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v; want the system config loaded", err)
				}
				if cfg.Origin != OriginSystem || cfg.Providers[0].Name != "from-system" {
					t.Errorf("loaded %s (%s); want the system config", cfg.Source, cfg.Origin)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v; want ErrConfig containing %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "the system config") || !strings.Contains(err.Error(), load) {
				t.Errorf("error %q does not say it is the system config at %s", err, load)
			}
		})
	}
}

func TestSystemConfigPathIsTheAdministrators(t *testing.T) {
	t.Parallel()
	p := SystemConfigPath()
	if !filepath.IsAbs(p) || !strings.HasSuffix(p, filepath.Join("credhost", "config.yaml")) {
		t.Errorf("SystemConfigPath() = %q; want an absolute .../credhost/config.yaml", p)
	}
}
