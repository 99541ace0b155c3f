package secretstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
	"github.com/credhost/credhost/sdk/secretstore"
)

// memBackend is an in-memory item (a fake backend: the real ones are the
// keychain's Secret Service and Credential Manager, tested in their plugins).
type memBackend struct {
	secret *string
	getErr error
}

func (m *memBackend) Get() (string, error) {
	if m.getErr != nil {
		return "", m.getErr
	}
	if m.secret == nil {
		return "", secretstore.ErrNoItem
	}
	return *m.secret, nil
}

func (m *memBackend) Set(s string) error { m.secret = &s; return nil }

func newItem(t *testing.T, b secretstore.Backend, o secretstore.Options, limit int) *secretstore.Item {
	t.Helper()
	return newOAuthItem(t, b, o, limit, sdk.OAuthConfig{})
}

// newOAuthItem is newItem refreshing through the oauth block oauthCfg.
func newOAuthItem(t *testing.T, b secretstore.Backend, o secretstore.Options, limit int, oauthCfg sdk.OAuthConfig) *secretstore.Item {
	t.Helper()
	it, err := secretstore.NewItem(secretstore.Spec{Provider: "p", Describe: "test item", Backend: b, Limit: limit, LimitWhy: "the test store takes little", Hint: "do the thing"}, o, oauthCfg)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// itemProvider adapts an Item to sdk.Provider for the conformance suite.
func itemProvider(it *secretstore.Item) sdktest.Fake {
	return sdktest.Fake{
		InfoF:    func(context.Context) (sdk.Info, error) { return it.Info("test") },
		ReadF:    it.Read,
		SaveF:    it.Save,
		RefreshF: it.Refresh,
	}
}

// TestConformance: a json item keeps every field (a raw one keeps only the
// token, see TestRawAndLimit).
func TestConformance(t *testing.T) {
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		p := itemProvider(newOAuthItem(t, &memBackend{}, secretstore.Options{}, 0, s.OAuth))
		if s.Seed != nil {
			if err := p.Save(context.Background(), *s.Seed); err != nil {
				t.Fatal(err)
			}
		}
		return p
	})
}

func TestUnavailableIsNotFoundWithHint(t *testing.T) {
	t.Parallel()
	b := &memBackend{getErr: fmt.Errorf("%w: no session bus", secretstore.ErrUnavailable)}
	_, err := newItem(t, b, secretstore.Options{}, 0).Read(context.Background())
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "no session bus; do the thing") {
		t.Errorf("got %v; want not-found with the reason and the hint", err)
	}
	b.getErr = errors.New("disk on fire")
	if _, err := newItem(t, b, secretstore.Options{}, 0).Read(context.Background()); errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "test item: disk on fire") {
		t.Errorf("got %v; want a fault naming the item", err)
	}
}

func TestRawAndLimit(t *testing.T) {
	t.Parallel()
	b := &memBackend{}
	it := newItem(t, b, secretstore.Options{Format: "raw"}, 10)
	if err := it.Save(context.Background(), sdk.Credential{AccessToken: "0123456789", RefreshToken: "dropped"}); err != nil || *b.secret != "0123456789" {
		t.Fatalf("raw save: %v", err)
	}
	if err := it.Save(context.Background(), sdk.Credential{AccessToken: "0123456789a"}); err == nil || !strings.Contains(err.Error(), "11 bytes; the test store takes little (nothing was written)") || *b.secret != "0123456789" {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := it.Refresh(context.Background(), sdk.Credential{}); !errors.Is(err, sdk.ErrUnsupported) {
		t.Errorf("raw refresh: %v; want ErrUnsupported", err)
	}
}

// slowBackend is a fake backend whose Set takes longer than the item's
// timeout (a keyring busy writing): the fault cannot be made on demand
// with a real keyring.
type slowBackend struct {
	memBackend
	delay time.Duration
	done  atomic.Bool
}

func (s *slowBackend) Set(v string) error {
	time.Sleep(s.delay)
	err := s.memBackend.Set(v)
	s.done.Store(true)
	return err
}

// TestSaveWaitsForTheWriteItStarted: a Save whose write outlasts the
// timeout must not return (and let the host release the store's locks)
// while the write can still land: it returns once the write is done, and
// reports what happened to it.
func TestSaveWaitsForTheWriteItStarted(t *testing.T) {
	t.Parallel()
	b := &slowBackend{delay: 300 * time.Millisecond}
	timeout := sdk.Duration(20 * time.Millisecond)
	it := newItem(t, b, secretstore.Options{Timeout: &timeout}, 0)
	err := it.Save(context.Background(), sdk.Credential{AccessToken: "new-access", RefreshToken: "new-refresh"})
	if !b.done.Load() {
		t.Fatalf("Save returned (%v) while its write was still running", err)
	}
	if err != nil {
		t.Errorf("Save: %v; want the completed write reported as saved", err)
	}
	if got, rerr := it.Read(context.Background()); rerr != nil || got.AccessToken != "new-access" {
		t.Errorf("read back: %v", rerr)
	}
}

// lockPathEnv makes this test binary, run again, print the lock path an
// item computes in its environment and exit.
const lockPathEnv = "CREDHOST_TEST_PRINT_LOCK_PATH"

func TestMain(m *testing.M) {
	if os.Getenv(lockPathEnv) != "" {
		it, err := secretstore.NewItem(secretstore.Spec{Provider: "p", LockKey: "svc\x00acct", Backend: &memBackend{}}, secretstore.Options{}, sdk.OAuthConfig{})
		if err == nil {
			var info sdk.Info
			if info, err = it.Info("keychain"); err == nil && len(info.Locks) == 1 {
				fmt.Print(info.Locks[0].Path)
				os.Exit(0)
			}
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestLockPathIgnoresCacheDir: two processes of one user whose
// XDG_CACHE_HOME differ (a service, an IDE, a shell) must lock the same
// file, or they serialise nothing.
func TestLockPathIgnoresCacheDir(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no XDG directories")
	}
	tmp := t.TempDir()
	paths := map[string]bool{}
	for _, cache := range []string{"a", "b"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = []string{lockPathEnv + "=1", "HOME=" + tmp, "TMPDIR=" + tmp, "XDG_CACHE_HOME=" + filepath.Join(tmp, cache)}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("XDG_CACHE_HOME=%s: %v", cache, err)
		}
		paths[string(out)] = true
	}
	if len(paths) != 1 {
		t.Errorf("lock paths %v; want one path for both cache directories", paths)
	}
}

// TestLockDirRefusesUnsafeDirectory: the per-user lock directory under the
// temporary directory is refused when it is not a private directory of
// this user's: another user (or a link, or mode 0755) could swap the lock
// file and let two processes refresh at once.
func TestLockDirRefusesUnsafeDirectory(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	good, err := secretstore.LockDir()
	if err != nil {
		t.Fatalf("LockDir: %v", err)
	}
	if st, err := os.Lstat(good); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("lock directory %s: %v; want it created 0700", good, err)
	}
	if err := os.Chmod(good, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := secretstore.LockDir(); err == nil || !strings.Contains(err.Error(), good) {
		t.Errorf("mode 0755: %v; want a refusal naming %s", err, good)
	}
	if os.Geteuid() == 0 {
		os.Chmod(good, 0o700)
		if err := os.Lchown(good, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		if _, err := secretstore.LockDir(); err == nil || !strings.Contains(err.Error(), good) {
			t.Errorf("owned by uid 12345: %v; want a refusal naming %s", err, good)
		}
	}
	os.Remove(good)
	if err := os.Symlink(t.TempDir(), good); err != nil {
		t.Fatal(err)
	}
	if _, err := secretstore.LockDir(); err == nil || !strings.Contains(err.Error(), good) {
		t.Errorf("a link: %v; want a refusal naming %s", err, good)
	}
	it := newItem(t, &memBackend{}, secretstore.Options{}, 0)
	if _, err := it.Info("keychain"); err == nil {
		t.Errorf("Info with an unsafe lock directory: no error; want one (the host then refuses to refresh)")
	}
}

// TestNotFoundCarriesItsHint: an item that holds nothing says how to log
// in (the Spec's words, else DefaultLogin); a store that cannot be reached
// says what to do about the store.
func TestNotFoundCarriesItsHint(t *testing.T) {
	t.Parallel()
	noCred := `{"other":1}`
	tests := map[string]struct {
		backend *memBackend
		login   string
		want    string
	}{
		"no item":             {backend: &memBackend{}, login: "log in with the client", want: "log in with the client"},
		"no item, no words":   {backend: &memBackend{}, want: secretstore.DefaultLogin},
		"no credential in it": {backend: &memBackend{secret: &noCred}, login: "log in with the client", want: "log in with the client"},
		"store not reachable": {backend: &memBackend{getErr: fmt.Errorf("%w: no session bus", secretstore.ErrUnavailable)}, login: "log in with the client", want: "do the thing"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			it, err := secretstore.NewItem(secretstore.Spec{Provider: "p", Describe: "test item", Backend: tc.backend, Hint: "do the thing", Login: tc.login}, secretstore.Options{}, sdk.OAuthConfig{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = it.Read(context.Background())
			if !errors.Is(err, sdk.ErrNotFound) || sdk.Hint(err) != tc.want || strings.HasPrefix(err.Error(), sdk.ErrNotFound.Error()) {
				t.Errorf("got %v (hint %q); want not-found reading as its reason, hinting %q", err, sdk.Hint(err), tc.want)
			}
		})
	}
}

// lateBackend answers Get only after a delay: a store waiting on a prompt.
type lateBackend struct{ delay time.Duration }

func (b lateBackend) Get() (string, error) { time.Sleep(b.delay); return `{"k":1}`, nil }
func (b lateBackend) Set(string) error     { return nil }

// TestAbandonedReadWritesNothingReadIsUsing: a Get that answers after the
// timeout finishes in the background; under the race detector, its late
// answer must not touch what Read returned.
func TestAbandonedReadWritesNothingReadIsUsing(t *testing.T) {
	t.Parallel()
	timeout := sdk.Duration(5 * time.Millisecond)
	it := newItem(t, lateBackend{delay: 50 * time.Millisecond}, secretstore.Options{Timeout: &timeout}, 0)
	_, err := it.Read(context.Background())
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("got %v; want not-found saying the store did not answer", err)
	}
	time.Sleep(100 * time.Millisecond) // the abandoned Get answers now
}
