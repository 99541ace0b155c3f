package host

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// TestRereadServesAStoreChangedBehindTheHost: a new login written to the
// store while a token is cached is what Token serves after a Reread, with
// no token request; before it, the cached token is served (Token alone
// would serve it for hours).
func TestRereadServesAStoreChangedBehindTheHost(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	old := r.seed(testNow.Add(3 * time.Hour))
	ctx := context.Background()
	if res, _ := r.host.Token(ctx); res.Credential.AccessToken != old.AccessToken {
		t.Fatal("Token does not serve the seeded login")
	}
	fresh := r.seed(testNow.Add(5 * time.Hour))
	if res, _ := r.host.Token(ctx); res.Credential.AccessToken != old.AccessToken {
		t.Fatal("the test needs Token to serve the cached token")
	}
	res, err := r.host.Reread(ctx)
	if err != nil || res.Credential.AccessToken != fresh.AccessToken {
		t.Fatalf("Reread: %v; want the new login", err)
	}
	if res, _ := r.host.Token(ctx); res.Credential.AccessToken != fresh.AccessToken || r.srv.Requests() != 0 {
		t.Errorf("Token after Reread: the new login %v, %d requests; want it and none", res.Credential.AccessToken == fresh.AccessToken, r.srv.Requests())
	}
}

// TestRereadNeverRefreshes: a token inside the buffer is returned as it is
// and not cached; refreshing is Token's (and refresh ahead's) to do, with
// their backoff.
func TestRereadNeverRefreshes(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	seeded := r.seed(testNow.Add(time.Minute))
	res, err := r.host.Reread(context.Background())
	if err != nil || res.Credential.AccessToken != seeded.AccessToken || res.Refreshed || !r.host.NeedsRefresh(res) || r.srv.Requests() != 0 {
		t.Fatalf("Reread of a token in the buffer: %v refreshed %v, %d requests; want it as it is, no request", err, res.Refreshed, r.srv.Requests())
	}
	if res, _ := r.host.Peek(context.Background()); res.Credential.AccessToken != seeded.AccessToken || r.srv.Requests() != 0 {
		t.Errorf("Peek refreshed or lost the token")
	}
}

// TestRereadKeepsTheCacheOnAFaultAndDropsItOnALogout: a store that fails
// to read (a file half written) leaves the cached token served; a chain
// where every provider holds nothing (the user logged out) stops it.
func TestRereadKeepsTheCacheOnAFaultAndDropsItOnALogout(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	seeded := r.seed(testNow.Add(3 * time.Hour))
	ctx := context.Background()
	r.host.Token(ctx)
	read := r.store.ReadF
	r.store.ReadF = func(context.Context) (sdk.Credential, error) {
		return sdk.Credential{}, errors.New("unexpected end of JSON input")
	}
	if _, err := r.host.Reread(ctx); err == nil {
		t.Fatal("Reread of a failing store: no error")
	}
	if res, err := r.host.Token(ctx); err != nil || res.Credential.AccessToken != seeded.AccessToken {
		t.Errorf("after a fault: %v; want the cached token still served", err)
	}
	r.store.ReadF = read
	r.store.mu.Lock()
	r.store.cred = nil
	r.store.mu.Unlock()
	if _, err := r.host.Reread(ctx); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("Reread of an empty chain: %v", err)
	}
	if _, err := r.host.Token(ctx); !errors.Is(err, ErrNoCredential) {
		t.Errorf("after a logout Token still serves the old token (err %v)", err)
	}
}

// TestRefreshRejectedByFingerprint: naming a token that is not the current
// one returns the current one without a request; naming the current one
// refreshes it once.
func TestRefreshRejectedByFingerprint(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	seeded := r.seed(testNow.Add(3 * time.Hour))
	ctx := context.Background()
	res, err := r.host.RefreshRejected(ctx, sdk.Fingerprint("some older token"))
	if err != nil || res.Credential.AccessToken != seeded.AccessToken || r.srv.Requests() != 0 {
		t.Fatalf("another token rejected: %v, %d requests; want the current token and none", err, r.srv.Requests())
	}
	res, err = r.host.RefreshRejected(ctx, seeded.Fingerprint())
	if err != nil || !res.Refreshed || res.Credential.AccessToken == seeded.AccessToken || r.srv.Requests() != 1 {
		t.Fatalf("the current token rejected: %v refreshed %v, %d requests; want one refresh", err, res.Refreshed, r.srv.Requests())
	}
	again, err := r.host.RefreshRejected(ctx, seeded.Fingerprint())
	if err != nil || again.Credential.AccessToken != res.Credential.AccessToken || r.srv.Requests() != 1 {
		t.Errorf("the same rejection again: %v, %d requests; want the new token and no request", err, r.srv.Requests())
	}
}

// TestRereadWarnsOnceForAProviderThatKeepsFailing: a holder re-reads the
// chain every few seconds; a provider that fails the same way each time is
// warned about once, again when its reason changes, and its recovery is
// said once; the re-reads in between are debug lines.
func TestRereadWarnsOnceForAProviderThatKeepsFailing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	fault := errors.New("the store is half written")
	cfg := DefaultConfig()
	cfg.Source = "test"
	cfg.Providers = []ProviderConfig{{Name: "flaky", Plugin: "flaky"}, {Name: "good", Plugin: "good"}}
	b := map[string]Builtin{
		"flaky": {New: func() sdk.Provider {
			return sdktest.Fake{ReadF: func(context.Context) (sdk.Credential, error) {
				mu.Lock()
				defer mu.Unlock()
				if fault != nil {
					return sdk.Credential{}, fault
				}
				return sdk.Credential{}, sdk.ErrNotFound
			}}
		}},
		"good": {New: func() sdk.Provider {
			return sdktest.Fake{ReadF: func(context.Context) (sdk.Credential, error) {
				return sdk.Credential{AccessToken: "tok-good", ExpiresAt: time.Now().Add(3 * time.Hour)}, nil
			}}
		}},
	}
	logs := &syncLog{}
	h, err := New(cfg, WithBuiltins(b), WithLogger(hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	setFault := func(err error) {
		mu.Lock()
		fault = err
		mu.Unlock()
	}
	rereads := func(n int) {
		for range n {
			if _, err := h.Reread(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	rereads(5)
	setFault(errors.New("permission denied"))
	rereads(5)
	setFault(nil)
	rereads(5)
	setFault(errors.New("permission denied"))
	rereads(5)

	text := logs.String()
	if n := strings.Count(text, "[WARN]"); n != 3 {
		t.Errorf("%d warnings over 20 re-reads with 3 changes to a failure, want 3:\n%s", n, text)
	}
	if n := strings.Count(text, "provider reads again"); n != 1 {
		t.Errorf("the recovery is said %d times, want once:\n%s", n, text)
	}
	if n := strings.Count(text, "still failing"); n != 12 {
		t.Errorf("%d debug lines for a failure that did not change, want 12:\n%s", n, text)
	}
}

// syncLog is a log output the test reads while the host writes.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
