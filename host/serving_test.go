package host

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
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
