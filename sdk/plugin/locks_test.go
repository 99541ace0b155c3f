package plugin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// infoProvider answers Info with info; its other calls are errProvider's.
type infoProvider struct {
	errProvider
	info sdk.Info
}

func (p infoProvider) Info(context.Context) (sdk.Info, error) { return p.info, nil }

// TestLocksCrossTheWire: every lock a plugin declares reaches the host
// intact, in order; a host built before Locks still finds the store's
// flock in lock_path; and a lock kind the wire does not know arrives as
// a kind the host refuses, never as no lock.
func TestLocksCrossTheWire(t *testing.T) {
	t.Parallel()
	locks := []sdk.Lock{
		{Kind: sdk.LockFlock, Path: "/c/.credentials.json.lock", Scope: sdk.LockScopeRefresh},
		{Kind: sdk.LockDir, Path: "/c/.oauth_refresh.lock", Stale: 10 * time.Second, Scope: sdk.LockScopeRefresh},
		{Kind: sdk.LockDir, Path: "/c.lock", Stale: 10 * time.Second, Scope: sdk.LockScopeRefresh},
		{Kind: sdk.LockDir, Path: "/c/.storage-write.lock", Stale: 15 * time.Second, Scope: sdk.LockScopeSave},
		{Kind: sdk.LockProvider, Path: "fleet/claude", Scope: sdk.LockScopeRefresh},
	}
	got, err := dialInMemory(t, infoProvider{info: sdk.Info{Name: "f", Locks: locks}}).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Locks) != fmt.Sprint(locks) {
		t.Errorf("locks crossed as %+v; want %+v", got.Locks, locks)
	}
	if got.LockPath != locks[0].Path {
		t.Errorf("lock_path %q; want the first flock, for hosts built before Locks", got.LockPath)
	}

	got, _ = dialInMemory(t, infoProvider{info: sdk.Info{Name: "f", Locks: []sdk.Lock{{Kind: "lease-v9", Path: "/x"}}}}).Info(context.Background())
	if len(got.Locks) != 1 || got.Locks[0].Kind == sdk.LockFlock || got.Locks[0].Kind == sdk.LockDir || got.Locks[0].Kind == "" {
		t.Errorf("an unknown kind crossed as %+v; want a kind no host takes", got.Locks)
	}
}
