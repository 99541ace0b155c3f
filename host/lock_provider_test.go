package host

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth"
	"github.com/credhost/credhost/sdk/sdktest"
)

// These tests drive the host's side of a lock a provider holds itself with
// the fake store and a fake lock (sdktest.Hold): losing a lease at a
// chosen moment, or a lock that never comes, are faults a real store
// cannot be made to show on demand. The same rules across real plugin
// processes and a shared store are in cmd/credhost (fleet_test.go).

var fleetLock = sdk.Lock{Kind: sdk.LockProvider, Path: "fleet/claude", Scope: sdk.LockScopeRefresh}

// fakeLease is a fake provider lock for the rig's store: it records what
// was asked and hands each hold to the test.
type fakeLease struct {
	mu    sync.Mutex
	reqs  []sdk.LockRequest
	holds []*sdktest.Hold
	// take, when set, replaces the plain grant: block, fail, or grant.
	take func(ctx context.Context) (sdk.LockHold, error)
}

func (f *fakeLease) lock(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	take := f.take
	f.mu.Unlock()
	if take != nil {
		return take(ctx)
	}
	h := sdktest.NewHold(ctx)
	f.mu.Lock()
	f.holds = append(f.holds, h)
	f.mu.Unlock()
	return h, nil
}

func (f *fakeLease) hold(t *testing.T) *sdktest.Hold {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.holds) != 1 {
		t.Fatalf("%d holds of the provider lock; want 1", len(f.holds))
	}
	return f.holds[0]
}

func released(h *sdktest.Hold) bool {
	select {
	case <-h.Released():
		return true
	default:
		return false
	}
}

// leaseRig is a rig whose store declares the fleet lock and holds it
// through lease.
func leaseRig(t *testing.T, o rigOptions) (*refreshRig, *fakeLease) {
	t.Helper()
	r := newRig(t, o)
	lease := &fakeLease{}
	r.store.locks = []sdk.Lock{fleetLock}
	r.store.LockF = lease.lock
	return r, lease
}

// TestProviderLockHeldAroundRefresh: the host asks the provider for the
// lock the store declares, holds it over the token request and the save,
// and lets it go afterwards.
func TestProviderLockHeldAroundRefresh(t *testing.T) {
	t.Parallel()
	r, lease := leaseRig(t, rigOptions{})
	var heldAtRequest, heldAtSave bool
	r.store.beforeRPC = func() { heldAtRequest = !released(lease.hold(t)) }
	save := r.store.SaveF
	r.store.SaveF = func(ctx context.Context, c sdk.Credential) error {
		heldAtSave = !released(lease.hold(t))
		return save(ctx, c)
	}
	r.seed(testNow.Add(-time.Minute))
	res, err := r.host.Token(context.Background())
	if err != nil || !res.Refreshed || res.Degraded {
		t.Fatalf("Token: %v, refreshed %v degraded %v (%v)", err, res.Refreshed, res.Degraded, res.DegradedReason)
	}
	if !heldAtRequest || !heldAtSave {
		t.Errorf("lock held at the token request %v, at the save %v; want both", heldAtRequest, heldAtSave)
	}
	if !released(lease.hold(t)) {
		t.Errorf("the provider lock is still held after the refresh")
	}
	if len(lease.reqs) != 1 || lease.reqs[0].Lock != fleetLock {
		t.Errorf("the provider was asked for %+v; want the declared %+v once", lease.reqs, fleetLock)
	}
	if r.srv.Requests() != 1 || r.store.get().AccessToken != res.Credential.AccessToken {
		t.Errorf("%d token requests, saved %v; want 1, saved", r.srv.Requests(), r.store.get().AccessToken == res.Credential.AccessToken)
	}
}

// TestProviderLockNotHadRefreshesNothing: a lock the provider cannot give
// (the store is unreachable, another machine holds it past
// refresh.timeout, the provider holds no locks) leaves the token
// unrefreshed, served degraded with the reason, and no request sent.
func TestProviderLockNotHadRefreshesNothing(t *testing.T) {
	t.Parallel()
	gaveUp := make(chan struct{})
	tests := map[string]struct {
		take   func(ctx context.Context) (sdk.LockHold, error)
		noLock bool // the provider does not implement Lock at all
		reason string
		wait   chan struct{} // closed once the provider was told to stop waiting
	}{
		"store unreachable": {
			take: func(context.Context) (sdk.LockHold, error) {
				return nil, errors.New("etcd at 10.0.0.1:2379 is unreachable")
			},
			reason: "etcd at 10.0.0.1:2379 is unreachable",
		},
		"held elsewhere past refresh.timeout": {
			take: func(ctx context.Context) (sdk.LockHold, error) {
				<-ctx.Done()
				close(gaveUp)
				return nil, ctx.Err()
			},
			reason: "could not be had within",
			wait:   gaveUp,
		},
		"provider holds no locks": {noLock: true, reason: "its provider cannot take locks"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, lease := leaseRig(t, rigOptions{refreshTimeout: 300 * time.Millisecond})
			lease.take = tc.take
			if tc.noLock {
				r.store.LockF = nil
			}
			seeded := r.seed(testNow.Add(-time.Minute))
			res, err := r.host.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if !res.Degraded || res.Credential.AccessToken != seeded.AccessToken || !strings.Contains(res.DegradedReason.Error(), tc.reason) {
				t.Errorf("degraded %v (%v), old token %v; want the old token, degraded, saying %q", res.Degraded, res.DegradedReason, res.Credential.AccessToken == seeded.AccessToken, tc.reason)
			}
			if r.srv.Arrived() != 0 || r.store.saves != 0 {
				t.Errorf("%d token requests, %d saves; want none without the lock", r.srv.Arrived(), r.store.saves)
			}
			if tc.wait != nil {
				select {
				case <-tc.wait:
				case <-time.After(10 * time.Second):
					t.Errorf("the provider was never told to stop waiting for the lock")
				}
			}
		})
	}
}

// TestProviderLockLostBeforeRequestRefreshesNothing: a lease lost between
// taking the lock and the token request (the re-read was slow) stops the
// refresh: another machine may be refreshing this very token.
func TestProviderLockLostBeforeRequestRefreshesNothing(t *testing.T) {
	t.Parallel()
	r, lease := leaseRig(t, rigOptions{})
	r.seed(testNow.Add(-time.Minute))
	r.store.afterRead = func() {
		lease.mu.Lock()
		defer lease.mu.Unlock()
		for _, h := range lease.holds {
			h.Lose(errors.New("the lease on fleet/claude expired"))
		}
	}
	res, err := r.host.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if !res.Degraded || !strings.Contains(res.DegradedReason.Error(), "lease on fleet/claude expired") {
		t.Errorf("degraded %v (%v); want degraded, saying the lease expired", res.Degraded, res.DegradedReason)
	}
	if r.srv.Arrived() != 0 {
		t.Errorf("%d token requests after the lock was lost; want none", r.srv.Arrived())
	}
}

// TestProviderLockLostBeforeSaveIsNotSavedBlindly: a lease lost during the
// token request does not make the host write blindly. It re-reads the
// store: still holding the token refreshed, the new one is saved (the
// store's compare-and-swap guards that write); holding another holder's
// newer login, that one is used and left alone; unreadable, nothing is
// written.
func TestProviderLockLostBeforeSaveIsNotSavedBlindly(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		// meanwhile runs after the token request, once the lease is lost.
		meanwhile func(r *refreshRig) sdk.Credential
		saved     bool   // the refreshed token reaches the store
		useOther  bool   // the result is the other holder's login
		log       string // the warning says
	}{
		"store unchanged": {saved: true, log: "compare-and-swap"},
		"another holder saved": {
			meanwhile: func(r *refreshRig) sdk.Credential {
				a, rt := r.srv.Issue()
				other := sdk.Credential{AccessToken: a, RefreshToken: rt, ExpiresAt: testNow.Add(time.Hour)}
				r.store.cred = &other
				return other
			},
			useOther: true, log: "another holder has saved a new login",
		},
		"store unreadable": {
			meanwhile: func(r *refreshRig) sdk.Credential {
				r.store.ReadF = func(context.Context) (sdk.Credential, error) {
					return sdk.Credential{}, errors.New("etcd unreachable")
				}
				return sdk.Credential{}
			},
			log: "cannot be read",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, lease := leaseRig(t, rigOptions{})
			seeded := r.seed(testNow.Add(-time.Minute))
			var other sdk.Credential
			r.store.afterRPC = func(context.Context) {
				lease.hold(t).Lose(errors.New("the lease on fleet/claude expired"))
				if tc.meanwhile != nil {
					r.store.mu.Lock()
					other = tc.meanwhile(r)
					r.store.mu.Unlock()
				}
			}
			res, err := r.host.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			stored := r.store.get().AccessToken
			switch {
			case tc.saved && (stored != res.Credential.AccessToken || stored == seeded.AccessToken || r.store.saves != 1):
				t.Errorf("store holds the refreshed token: %v (%d saves); want it saved", stored == res.Credential.AccessToken, r.store.saves)
			case !tc.saved && r.store.saves != 0:
				t.Errorf("%d saves after the lease was lost; want none", r.store.saves)
			}
			if tc.useOther && (res.Credential.AccessToken != other.AccessToken || stored != other.AccessToken) {
				t.Errorf("got the other holder's token %v, store keeps it %v; want both", res.Credential.AccessToken == other.AccessToken, stored == other.AccessToken)
			}
			if !strings.Contains(r.logs.String(), tc.log) {
				t.Errorf("logs do not say %q:\n%s", tc.log, r.logs)
			}
		})
	}
}

// TestSpentRefreshTokenEndsInLogInAgain: a refresh token the endpoint
// rotated for an answer nobody received (a process killed mid-refresh)
// is spent, and nobody holds its successor. The next refresh presents it
// once (nothing tells it apart from a request that never arrived), is
// rejected, and says "log in again"; later refreshes, in this process or
// another one sharing the store, do not present it again. A new login
// refreshes as usual.
func TestSpentRefreshTokenEndsInLogInAgain(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.store.locks = []sdk.Lock{{Kind: sdk.LockFlock, Path: filepath.Join(t.TempDir(), "store.lock")}}
	seeded := r.seed(testNow.Add(-time.Minute))
	spender, err := oauth.New(sdk.OAuthConfig{TokenURL: r.srv.TokenURL(), ClientID: "client-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spender.Refresh(context.Background(), seeded); err != nil {
		t.Fatalf("spend the refresh token: %v", err)
	}

	res, err := r.host.Token(context.Background())
	if err != nil || !res.Degraded || !strings.Contains(res.DegradedReason.Error(), "log in again") {
		t.Fatalf("first refresh: %v, degraded %v (%v); want degraded, log in again", err, res.Degraded, res.DegradedReason)
	}
	if r.srv.Requests() != 2 || r.srv.Reuses() != 1 {
		t.Fatalf("%d requests, %d reuses; want the spent token presented once", r.srv.Requests(), r.srv.Reuses())
	}
	other, err := New(r.host.cfg, WithLogger(hclog.NewNullLogger()), WithBuiltins(map[string]Builtin{"store": {New: func() sdk.Provider { return r.store }}}), WithNow(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for name, h := range map[string]*Host{"this process": r.host, "another process": other} {
		res, err := h.Token(context.Background())
		if err != nil || !res.Degraded || !strings.Contains(res.DegradedReason.Error(), "so it is not presented again: log in again") {
			t.Errorf("%s: %v, degraded %v (%v); want degraded, log in again", name, err, res.Degraded, res.DegradedReason)
		}
	}
	if r.srv.Requests() != 2 {
		t.Errorf("%d requests; want the spent token never presented again", r.srv.Requests())
	}

	r.seed(testNow.Add(-time.Minute)) // the user logs in again
	res, err = other.Token(context.Background())
	if err != nil || !res.Refreshed || res.Degraded {
		t.Errorf("after a new login: %v, refreshed %v degraded %v (%v); want a refresh", err, res.Refreshed, res.Degraded, res.DegradedReason)
	}
}
