package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/host/hosttest"
	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// claudeLikeLocks are the locks a store shared with Claude Code declares,
// under dir: credhost's flock, two proper-lockfile refresh locks, and a
// write lock around the save.
func claudeLikeLocks(dir string) []sdk.Lock {
	return []sdk.Lock{
		{Kind: sdk.LockFlock, Path: filepath.Join(dir, "store.lock")},
		{Kind: sdk.LockDir, Path: filepath.Join(dir, ".oauth_refresh.lock"), Stale: 10 * time.Second},
		{Kind: sdk.LockDir, Path: dir + ".lock", Stale: 10 * time.Second},
		{Kind: sdk.LockDir, Path: filepath.Join(dir, ".storage-write.lock"), Stale: 15 * time.Second, Scope: sdk.LockScopeSave},
	}
}

// victim is a file an attacker would like credhost to create, truncate or
// touch through a link planted at a lock path.
type victim struct {
	path  string
	mtime time.Time
}

func newVictim(t *testing.T) victim {
	t.Helper()
	v := victim{path: filepath.Join(t.TempDir(), "victim"), mtime: time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)}
	if err := os.WriteFile(v.path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(v.path, v.mtime, v.mtime); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v victim) assertUntouched(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(v.path)
	st, serr := os.Stat(v.path)
	if err != nil || serr != nil || string(data) != "precious" || !st.ModTime().Equal(v.mtime) {
		t.Errorf("the victim behind the link was touched (%v, %v)", err, serr)
	}
}

// TestLockPathsRefuseSymlinks plants a symlink to a victim file at each
// lock path, and at the Retry-After record: the refresh is refused (or,
// for the save's lock, the save), with a message naming the path, and the
// victim is untouched.
func TestLockPathsRefuseSymlinks(t *testing.T) {
	t.Parallel()
	for i, name := range []string{"flock", "dir lock", "legacy dir lock", "save lock", "retry-after record"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			locks := claudeLikeLocks(filepath.Join(dir, "cfg"))
			os.MkdirAll(filepath.Join(dir, "cfg"), 0o700)
			planted := locks[0].Path + ".retry-after"
			if i < len(locks) {
				planted = locks[i].Path
			}
			v := newVictim(t)
			if err := os.Symlink(v.path, planted); err != nil {
				t.Fatal(err)
			}
			r := newRig(t, rigOptions{})
			r.store.locks = locks
			seeded := r.seed(testNow.Add(-time.Minute))
			res, err := r.host.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if name == "save lock" {
				// The token endpoint has answered: the new token is used,
				// but not saved through the planted link.
				if !res.Refreshed || r.store.get().AccessToken != seeded.AccessToken || !strings.Contains(r.logs.String(), planted) {
					t.Errorf("refreshed %v, saved %v; want a refresh whose save is refused naming %s\n%s", res.Refreshed, r.store.get().AccessToken != seeded.AccessToken, planted, r.logs)
				}
			} else if !res.Degraded || !strings.Contains(res.DegradedReason.Error(), planted) || r.srv.Requests() != 0 {
				t.Errorf("degraded %v (%v), %d requests; want a refused refresh naming %s", res.Degraded, res.DegradedReason, r.srv.Requests(), planted)
			}
			v.assertUntouched(t)
			if st, err := os.Lstat(planted); err != nil || st.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the planted link was replaced or removed: %v", err)
			}
		})
	}
}

// TestLockOwnedByAnotherUserIsRefused: a lock file, lock directory or
// record another user owns (they could swap or hold it at will) is
// refused, naming it. Needs root to chown.
func TestLockOwnedByAnotherUserIsRefused(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another uid")
	}
	for i, name := range []string{"flock", "dir lock", "retry-after record"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "cfg")
			os.MkdirAll(dir, 0o700)
			locks := claudeLikeLocks(dir)
			planted := []string{locks[0].Path, locks[1].Path, locks[0].Path + ".retry-after"}[i]
			var err error
			if name == "dir lock" {
				err = os.Mkdir(planted, 0o700)
			} else {
				err = os.WriteFile(planted, nil, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(planted, 12345, 12345); err != nil {
				t.Fatal(err)
			}
			r := newRig(t, rigOptions{})
			r.store.locks = locks
			r.seed(testNow.Add(-time.Minute))
			res, err := r.host.Token(context.Background())
			if err != nil || !res.Degraded || !strings.Contains(res.DegradedReason.Error(), planted) || !strings.Contains(res.DegradedReason.Error(), "uid 12345") || r.srv.Requests() != 0 {
				t.Errorf("degraded %v (%v), %d requests; want a refused refresh naming %s and its owner", res.Degraded, res.DegradedReason, r.srv.Requests(), planted)
			}
		})
	}
}

// TestFarFutureRetryAfterRecordIsIgnored: a record far beyond the 24 h cap
// (9999-12-31) is not one credhost wrote; it must not stop refreshing for
// good. It is ignored and removed, and the refresh goes ahead.
func TestFarFutureRetryAfterRecordIsIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	locks := []sdk.Lock{{Kind: sdk.LockFlock, Path: filepath.Join(dir, "store.lock")}}
	record := locks[0].Path + ".retry-after"
	if err := os.WriteFile(record, []byte("9999-12-31T00:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{})
	r.store.locks = locks
	r.seed(testNow.Add(-time.Minute))
	res, err := r.host.Token(context.Background())
	if err != nil || res.Degraded || !res.Refreshed || r.srv.Requests() != 1 {
		t.Fatalf("Token: %v, degraded %v (%v), %d requests; want one refresh despite the record", err, res.Degraded, res.DegradedReason, r.srv.Requests())
	}
	if _, err := os.Lstat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the far-future record is still there: %v", err)
	}
}

// TestRetryAfterRecordWithinADayHoldsOff: a record inside the cap is still
// honoured by the next process (the record's purpose).
func TestRetryAfterRecordWithinADayHoldsOff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	locks := []sdk.Lock{{Kind: sdk.LockFlock, Path: filepath.Join(dir, "store.lock")}}
	if err := os.WriteFile(locks[0].Path+".retry-after", []byte(testNow.Add(time.Hour).Format(time.RFC3339Nano)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{})
	r.store.locks = locks
	r.seed(testNow.Add(-time.Minute))
	res, _ := r.host.Token(context.Background())
	if !res.Degraded || !strings.Contains(res.DegradedReason.Error(), "asked to wait") || r.srv.Requests() != 0 {
		t.Errorf("degraded %v (%v), %d requests; want the record honoured", res.Degraded, res.DegradedReason, r.srv.Requests())
	}
}

// TestInfoFailureRefusesRefresh: a store whose Info failed has unknown
// locks; refreshing it (here as an env token's refresh_with store, which
// the chain reaches without Info) would run without them. It is refused.
func TestInfoFailureRefusesRefresh(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]rigOptions{
		"refresh_with store": {envToken: storeToken, refreshWith: true},
		"the store itself":   {},
	} {
		r := newRig(t, o)
		r.store.infoErr = errors.New("info timed out")
		r.seed(testNow.Add(-time.Minute))
		res, err := r.host.Token(context.Background())
		if err != nil || !res.Degraded || !strings.Contains(res.DegradedReason.Error(), "Info failed") || r.srv.Requests() != 0 {
			t.Errorf("%s: Token: %v, degraded %v (%v), %d requests; want a refused refresh saying Info failed", name, err, res.Degraded, res.DegradedReason, r.srv.Requests())
		}
	}
}

// TestRootSharesTheStoreOwnersLocks: root refreshing a user's store uses
// the lock files that user's processes use (owned by the owner of their
// directory), or root and the user would not exclude each other.
func TestRootSharesTheStoreOwnersLocks(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "cfg")
	os.MkdirAll(dir, 0o700)
	locks := claudeLikeLocks(dir)
	os.WriteFile(locks[0].Path, nil, 0o600)
	for _, p := range []string{dir, locks[0].Path} {
		if err := os.Lchown(p, 12345, 12345); err != nil {
			t.Fatal(err)
		}
	}
	r := newRig(t, rigOptions{})
	r.store.locks = locks
	r.seed(testNow.Add(-time.Minute))
	res, err := r.host.Token(context.Background())
	if err != nil || res.Degraded || !res.Refreshed {
		t.Errorf("Token: %v, degraded %v (%v); want a refresh under the user's lock", err, res.Degraded, res.DegradedReason)
	}
}

// TestLockFileRootCreatesBelongsToTheStoreOwner: root refreshing a user's
// store for the first time creates the lock file beside it; the file must
// be the user's, or the user's own later refreshes refuse a lock owned by
// root and fail for good.
func TestLockFileRootCreatesBelongsToTheStoreOwner(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "cfg")
	os.MkdirAll(dir, 0o700)
	if err := os.Lchown(dir, 12345, 12346); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "store.lock")
	held, err := takeLocks(context.Background(), []sdk.Lock{{Kind: sdk.LockFlock, Path: path}}, nil, nil, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	held.release()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid, _ := fileOwnerGroup(st); uid != 12345 || gid != 12346 {
		t.Errorf("root created %s as %d:%d; want the store owner's 12345:12346", path, uid, gid)
	}
}

// TestUnknownLockKindRefusesRefresh: a lock this host cannot take (a
// provider lock from a provider that takes no locks, or a kind from a
// newer SDK) stops the refresh.
func TestUnknownLockKindRefusesRefresh(t *testing.T) {
	t.Parallel()
	for _, kind := range []sdk.LockKind{sdk.LockProvider, "lease-v9"} {
		r := newRig(t, rigOptions{})
		r.store.locks = []sdk.Lock{{Kind: kind, Path: "/fleet/claude"}}
		r.seed(testNow.Add(-time.Minute))
		res, _ := r.host.Token(context.Background())
		if !res.Degraded || !strings.Contains(res.DegradedReason.Error(), "not refreshing without it") || r.srv.Requests() != 0 {
			t.Errorf("kind %s: degraded %v (%v), %d requests; want a refused refresh", kind, res.Degraded, res.DegradedReason, r.srv.Requests())
		}
	}
}

// TestLocksHeldInOrderAroundTheirScope: while the token request is in
// flight the refresh locks are held and the save lock is not; afterwards
// every lock directory is gone and the flock file stays.
func TestLocksHeldInOrderAroundTheirScope(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cfg")
	locks := claudeLikeLocks(dir)
	r := newRig(t, rigOptions{})
	r.store.locks = locks
	var during []bool
	r.store.beforeRPC = func() {
		for _, l := range locks {
			_, err := os.Lstat(l.Path)
			during = append(during, err == nil)
		}
	}
	r.seed(testNow.Add(-time.Minute))
	res, err := r.host.Token(context.Background())
	if err != nil || !res.Refreshed {
		t.Fatalf("Token: %v, %+v", err, res)
	}
	if want := []bool{true, true, true, false}; !equalBools(during, want) {
		t.Errorf("held during the token request: %v; want %v (refresh locks, not the save lock)", during, want)
	}
	for _, l := range locks[1:] {
		if _, err := os.Lstat(l.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after the refresh: %v", l, err)
		}
	}
	if _, err := os.Lstat(locks[0].Path); err != nil {
		t.Errorf("the flock file was removed: %v", err)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDirLockAsProperLockfile: a held lock (fresh mtime) is waited for
// until the context ends; a stale one (mtime older than stale) is taken
// over; a held lock's mtime is refreshed; release removes it.
func TestDirLockAsProperLockfile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".oauth_refresh.lock")
	l := sdk.Lock{Kind: sdk.LockDir, Path: path, Stale: 2 * time.Second}
	log := hclog.NewNullLogger()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := takeDirLock(ctx, l, nil, log)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "another process has held the dir lock "+path) {
		t.Fatalf("held lock: %v; want a wait that gives up naming it", err)
	}
	old := time.Now().Add(-3 * time.Second)
	os.Chtimes(path, old, old)
	h, err := takeDirLock(context.Background(), l, nil, log)
	if err != nil {
		t.Fatalf("stale lock: %v; want it taken over", err)
	}
	release := h.release
	st, _ := os.Lstat(path)
	taken := st.ModTime()
	// The heartbeat touches it every stale/2 = 1 s; a loaded machine may
	// run the first one late, so wait for it generously.
	hosttest.WaitFor(t, "the held lock's mtime to be refreshed (heartbeat every 1 s)", 20*time.Second, func() bool {
		st, err := os.Lstat(path)
		return err == nil && st.ModTime().After(taken)
	})
	release()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("release left the directory: %v", err)
	}
}

// slowSaveStore is a fake store, run as a plugin process, whose Save
// outlasts the host's call timeout and then writes: a keyring busy writing,
// a fault a real store cannot be made to have on demand. Its write is the
// marker file; it declares a lock beside it. A write made when nobody held
// that lock any more leaves marker.unlocked beside it too: that is the
// write that must never happen.
func slowSaveStore(marker string) sdktest.Fake {
	return sdktest.Fake{
		InfoF: func(context.Context) (sdk.Info, error) {
			return sdk.Info{Name: "slowsave", CanSave: true, CanRefresh: true, Locks: []sdk.Lock{{Kind: sdk.LockFlock, Path: marker + ".lock"}}}, nil
		},
		ReadF: func(context.Context) (sdk.Credential, error) {
			return sdk.Credential{AccessToken: "old-access", RefreshToken: "old-refresh", ExpiresAt: time.Now().Add(-time.Minute)}, nil
		},
		RefreshF: func(context.Context, sdk.Credential) (sdk.Credential, error) {
			return sdk.Credential{AccessToken: "new-access", RefreshToken: "new-refresh", ExpiresAt: time.Now().Add(time.Hour)}, nil
		},
		SaveF: func(context.Context, sdk.Credential) error {
			time.Sleep(slowSaveTakes) // ignores its context, as a stuck backend does
			if flockFree(marker + ".lock") {
				if err := os.WriteFile(marker+".unlocked", nil, 0o600); err != nil {
					return err
				}
			}
			return os.WriteFile(marker, []byte("written"), 0o600)
		},
	}
}

// slowSaveTakes is how long slowSaveStore's Save takes: well past the
// call timeouts of the tests that use it.
const slowSaveTakes = 6 * time.Second

// flockFree reports whether nobody holds the flock at path: taking it
// without waiting succeeds (and it is let go at once). A holder in this
// same process counts too: a flock belongs to its open file.
func flockFree(path string) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release, _, err := lockFlockFile(ctx, path)
	if err != nil {
		return false
	}
	release()
	return true
}

// TestPluginSaveCannotLandAfterLocksReleased: a plugin's Save that does not
// answer within the call timeout must not go on to write after the host
// released the store's locks (another process would then refresh from the
// spent token, or have its newer token overwritten). The host ends the
// plugin before releasing them. A plugin slow to exit (a loaded machine)
// may still write while the host waits for it, under the locks: that
// write is safe, and only one made after their release fails the test.
func TestPluginSaveCannotLandAfterLocksReleased(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "store")
	cfg := testConfig(true, "slowsave:"+marker)
	// Every call to the plugin process has it, not only Save: on a loaded
	// machine a Configure took over 300ms.
	cfg.Plugins.CallTimeout = Duration(3 * time.Second)
	h, logs := newTestHost(t, cfg)
	res, err := h.Token(context.Background())
	if err != nil || !res.Refreshed {
		t.Fatalf("Token: %v, %+v", err, res)
	}
	// The locks are released now; the plugin's write, had it gone on,
	// lands slowSaveTakes after its Save began, at least a call timeout
	// before now.
	time.Sleep(slowSaveTakes - 3*time.Second + time.Second)
	if _, err := os.Stat(marker + ".unlocked"); err == nil {
		t.Errorf("the plugin's save landed after the host released the store's locks\n%s", logs)
	}
}

// TestInProcessSaveFinishesBeforeLocksReleased: an in-process Save past
// the call timeout still runs (a goroutine cannot be stopped); the host
// holds the store's locks until it has returned, so its write cannot land
// after another process took them.
func TestInProcessSaveFinishesBeforeLocksReleased(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "store")
	cfg := testConfig(false, "slowsave")
	cfg.Plugins.CallTimeout = Duration(300 * time.Millisecond)
	h, err := New(cfg, WithBuiltins(map[string]Builtin{
		"slowsave": {New: func() sdk.Provider { return slowSaveStore(marker) }},
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	res, err := h.Token(context.Background())
	if err != nil || !res.Refreshed {
		t.Fatalf("Token: %v, %+v", err, res)
	}
	// The refresh has released the store's locks: the write must be done,
	// and made while they were held.
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the store's locks were released while its save was still running: %v", err)
	}
	if _, err := os.Stat(marker + ".unlocked"); err == nil {
		t.Errorf("the save wrote after the store's locks were released")
	}
	held, err := takeLocks(context.Background(), []sdk.Lock{{Kind: sdk.LockFlock, Path: marker + ".lock"}}, nil, nil, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("the lock is still held after the refresh: %v", err)
	}
	held.release()
}

// TestJournalTakesOverOnlyWhatAKilledCredhostLeft: the next holder of the
// flock takes over at once a dir lock exactly as the previous (killed)
// holder recorded it, and never one that differs: a lock another program
// took since (after judging ours stale) is waited for.
func TestJournalTakesOverOnlyWhatAKilledCredhostLeft(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flock := sdk.Lock{Kind: sdk.LockFlock, Path: filepath.Join(dir, "store.lock")}
	dl := sdk.Lock{Kind: sdk.LockDir, Path: filepath.Join(dir, ".oauth_refresh.lock")}
	log := hclog.NewNullLogger()

	// A holder takes both, then "dies": its flock goes, its dir lock stays.
	held, err := takeLocks(context.Background(), []sdk.Lock{flock, dl}, nil, nil, log)
	if err != nil || held.journal == nil {
		t.Fatalf("takeLocks: %v", err)
	}
	j := held.journal
	j.mu.Lock()
	j.f.Close() // the process is gone: nothing more is written, nothing released
	j.mu.Unlock()
	_ = held // never released

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	held2, err := takeLocks(ctx, []sdk.Lock{flock, dl}, nil, nil, log)
	if err != nil {
		t.Fatalf("the lock the killed holder left was not taken over: %v", err)
	}
	held2.release()

	// The same record, but the directory is another program's now.
	held3, err := takeLocks(context.Background(), []sdk.Lock{flock, dl}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	held3.journal.f.Close()
	os.Remove(dl.Path)
	os.Mkdir(dl.Path, 0o700) // taken over by someone else: new directory
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := takeLocks(ctx, []sdk.Lock{flock, dl}, nil, nil, log); err == nil || !strings.Contains(err.Error(), "another process has held the dir lock") {
		t.Errorf("a lock someone else holds was taken: %v; want a wait that gives up", err)
	}
}

// takeOver does to the dir lock at path what a Node process does when it
// judges the lock stale: rmdir, then mkdir its own.
func takeOver(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseLeavesADirLockTakenOverByAnother: a lock another process took
// over before the next heartbeat is that process's now, and the release
// must not remove it: whether it was removed and made again (on ext4 the
// new directory often gets the old inode) or its mtime is no longer the
// one this process set (proper-lockfile calls that compromised too).
func TestReleaseLeavesADirLockTakenOverByAnother(t *testing.T) {
	t.Parallel()
	for name, steal := range map[string]func(t *testing.T, path string){
		"rmdir and mkdir": takeOver,
		"mtime set by another": func(t *testing.T, path string) {
			later := time.Now().Add(time.Second)
			if err := os.Chtimes(path, later, later); err != nil {
				t.Fatal(err)
			}
		},
	} {
		path := filepath.Join(t.TempDir(), ".oauth_refresh.lock")
		h, err := takeDirLock(context.Background(), sdk.Lock{Kind: sdk.LockDir, Path: path}, nil, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		steal(t, path)
		h.release()
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("%s: the release removed the lock another process took over: %v", name, err)
		}
	}
}

// TestTakenOverDirLockStopsTheRefresh: when another process takes over a
// dir lock while the host holds it (it judged it stale: this process was
// stopped, the machine slept), the host sends no token request: that
// process may be refreshing the same token. The message names the lock.
func TestTakenOverDirLockStopsTheRefresh(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cfg")
	locks := claudeLikeLocks(dir)
	r := newRig(t, rigOptions{})
	r.store.locks = locks
	var once sync.Once
	r.store.afterRead = func() {
		if _, err := os.Lstat(locks[1].Path); err != nil {
			return // not the re-read under the locks
		}
		once.Do(func() {
			os.Remove(locks[1].Path)
			os.Mkdir(locks[1].Path, 0o700)
		})
	}
	r.seed(testNow.Add(-time.Minute))
	res, err := r.host.Token(context.Background())
	if err != nil || !res.Degraded || r.srv.Requests() != 0 || !strings.Contains(res.DegradedReason.Error(), locks[1].Path) {
		t.Errorf("Token: %v, degraded %v (%v), %d requests; want no request and a message naming %s", err, res.Degraded, res.DegradedReason, r.srv.Requests(), locks[1].Path)
	}
	if _, err := os.Lstat(locks[1].Path); err != nil {
		t.Errorf("the lock the other process took over was removed: %v", err)
	}
}

// TestJournalIsReadOnlyUpToItsBound: a flock file grown huge (not by
// credhost: it writes a few lines) is read only up to its bound, so its
// size cannot exhaust memory; a record past the bound is not believed.
func TestJournalIsReadOnlyUpToItsBound(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.lock")
	line := filepath.Join(dir, "x") + " 1 2 3 4\n"
	junk := strings.Repeat(strings.Repeat("j", 99)+"\n", maxJournal/100+1)
	if err := os.WriteFile(path, []byte(junk+line), 0o600); err != nil {
		t.Fatal(err)
	}
	release, j, err := lockFlockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, ok := j.prev[filepath.Join(dir, "x")]; ok {
		t.Errorf("a record past the journal's bound was read")
	}
}
