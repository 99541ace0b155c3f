package file_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// TestSaveWritesTheFileReadReads: with ~/.claude a relative symlink to
// dotfiles/claude and .credentials.json a relative link to
// ../store/creds.json, the kernel opens dotfiles/store/creds.json (the
// link's target is taken from the directory the first link led to). Read
// must read it and Save must replace it, links left as links; a save to
// any other file would leave the spent refresh token where the next read
// finds it.
func TestSaveWritesTheFileReadReads(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	t.Parallel()
	cred := sdk.Credential{AccessToken: "at-new", RefreshToken: "rt-new", ExpiresAt: time.UnixMilli(1904281689000)}
	tests := map[string]struct {
		seeded bool // the store file exists before the save
	}{
		"store file exists":        {seeded: true},
		"store file not yet there": {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			home, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			mustMkdir(t, filepath.Join(home, "dotfiles", "claude"))
			mustSymlink(t, "dotfiles/claude", filepath.Join(home, ".claude"))
			mustSymlink(t, "../store/creds.json", filepath.Join(home, "dotfiles", "claude", ".credentials.json"))
			real := filepath.Join(home, "dotfiles", "store", "creds.json")
			if tc.seeded {
				mustMkdir(t, filepath.Dir(real))
				if err := os.WriteFile(real, []byte(`{"claudeAiOauth":{"accessToken":"at-old","refreshToken":"rt-old"},"keep":1}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(home, ".claude", ".credentials.json")
			p := configured(t, path)
			if tc.seeded {
				got, err := p.Read(context.Background())
				if err != nil || got.AccessToken != "at-old" {
					t.Fatalf("Read before the save: %v, %q; want at-old from %s", err, got.AccessToken, real)
				}
			}
			if err := p.Save(context.Background(), cred); err != nil {
				t.Fatal(err)
			}
			got, err := p.Read(context.Background())
			if err != nil || got.AccessToken != "at-new" {
				t.Fatalf("Read after the save: %v, %q; want what was saved", err, got.AccessToken)
			}
			data, err := os.ReadFile(path) // through the links, as the kernel goes
			if err != nil || !contains(data, `"accessToken":"at-new"`) {
				t.Fatalf("the file the links lead to holds %s (%v); want the saved token", data, err)
			}
			if tc.seeded && !contains(data, `"keep":1`) {
				t.Errorf("the other keys were lost: %s", data)
			}
			for _, stray := range []string{filepath.Join(home, "store")} {
				if _, err := os.Lstat(stray); err == nil {
					t.Errorf("%s was created; want nothing beside the real file", stray)
				}
			}
			for _, link := range []string{filepath.Join(home, ".claude"), path} {
				if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
					t.Errorf("%s is no longer a symlink", link)
				}
			}
			info, _ := p.Info(context.Background())
			if len(info.Locks) == 0 || info.Locks[0].Path != real+".lock" {
				t.Errorf("locks %v; want the flock %s.lock first, beside the real file", info.Locks, real)
			}
		})
	}
}

// TestResolveAppliesDotDotAfterTheLink: a link target "sub/../x" where sub
// is itself a link steps back from where sub leads, as the kernel does,
// not from the text.
func TestResolveAppliesDotDotAfterTheLink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, filepath.Join(dir, "elsewhere", "deep"))
	mustSymlink(t, "elsewhere/deep", filepath.Join(dir, "sub"))
	mustSymlink(t, "sub/../creds.json", filepath.Join(dir, ".credentials.json"))
	if err := os.WriteFile(filepath.Join(dir, "elsewhere", "creds.json"), []byte(`{"claudeAiOauth":{"accessToken":"at-here"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := configured(t, filepath.Join(dir, ".credentials.json"))
	if err := p.Save(context.Background(), sdk.Credential{AccessToken: "at-saved"}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "elsewhere", "creds.json")); !contains(data, `"accessToken":"at-saved"`) {
		t.Errorf("the file the kernel opens holds %s; want the save there", data)
	}
	if _, err := os.Lstat(filepath.Join(dir, "creds.json")); err == nil {
		t.Errorf("the save created %s, a file no read ever reads", filepath.Join(dir, "creds.json"))
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func contains(data []byte, s string) bool { return strings.Contains(string(data), s) }
