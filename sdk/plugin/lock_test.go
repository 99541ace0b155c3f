package plugin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// lockProvider is a provider whose Lock calls lock; its other calls are
// errProvider's.
type lockProvider struct {
	errProvider
	lock func(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error)
}

func (p lockProvider) Lock(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error) {
	return p.lock(ctx, req)
}

// wireHold is the plugin's side of a lock in these tests: the test loses
// it, and learns when it was let go and whether by Release.
type wireHold struct {
	mu       sync.Mutex
	err      error
	lost     chan struct{}
	released chan string // "release" or "context"
	once     sync.Once
}

func newWireHold(ctx context.Context) *wireHold {
	h := &wireHold{lost: make(chan struct{}), released: make(chan string, 1)}
	go func() {
		<-ctx.Done()
		h.let("context")
	}()
	return h
}

func (h *wireHold) let(how string)                { h.once.Do(func() { h.released <- how }) }
func (h *wireHold) Lost() <-chan struct{}         { return h.lost }
func (h *wireHold) Release(context.Context) error { h.let("release"); return nil }
func (h *wireHold) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}
func (h *wireHold) lose(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	close(h.lost)
}

// holdingProvider serves a lock whose holds it hands to the test.
func holdingProvider() (lockProvider, chan *wireHold, chan sdk.LockRequest) {
	holds, reqs := make(chan *wireHold, 1), make(chan sdk.LockRequest, 1)
	return lockProvider{lock: func(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error) {
		reqs <- req
		h := newWireHold(ctx)
		holds <- h
		return h, nil
	}}, holds, reqs
}

var fleetLock = sdk.Lock{Kind: sdk.LockProvider, Path: "fleet/claude", Scope: sdk.LockScopeRefresh}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		panic("unreachable")
	}
}

// TestLockStreamHoldsUntilReleased: the lock named crosses to the plugin
// intact; the host's Lock returns once the plugin holds it; the plugin
// keeps it while the stream is open and lets it go, by Release, when the
// host releases it.
func TestLockStreamHoldsUntilReleased(t *testing.T) {
	t.Parallel()
	impl, holds, reqs := holdingProvider()
	hold, err := dialInMemory(t, impl).(sdk.Locker).Lock(context.Background(), sdk.LockRequest{Lock: fleetLock})
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	if got := waitFor(t, reqs, "lock request"); got.Lock != fleetLock {
		t.Errorf("the plugin was asked for %+v; want %+v", got.Lock, fleetLock)
	}
	ph := waitFor(t, holds, "hold")
	select {
	case how := <-ph.released:
		t.Fatalf("the plugin let the lock go (%s) while the host held it", how)
	case <-time.After(100 * time.Millisecond):
	}
	if err := hold.Release(context.Background()); err != nil {
		t.Fatalf("release: %v", err)
	}
	if how := waitFor(t, ph.released, "release"); how != "release" {
		t.Errorf("the plugin let the lock go by %s; want by Release", how)
	}
	select {
	case <-hold.Lost():
		t.Errorf("a released lock reads as lost: %v", hold.Err())
	default:
	}
}

// TestLockLossCrossesTheWire: a lock the plugin loses (a lease expired)
// reads as lost on the host's side, with the plugin's reason and the
// lock's name.
func TestLockLossCrossesTheWire(t *testing.T) {
	t.Parallel()
	impl, holds, _ := holdingProvider()
	hold, err := dialInMemory(t, impl).(sdk.Locker).Lock(context.Background(), sdk.LockRequest{Lock: fleetLock})
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	defer hold.Release(context.Background())
	if hold.Err() != nil {
		t.Fatalf("a held lock has error %v", hold.Err())
	}
	waitFor(t, holds, "hold").lose(errors.New("the lease on fleet/claude expired"))
	waitFor(t, hold.Lost(), "loss")
	if err := hold.Err(); err == nil || !strings.Contains(err.Error(), "lease on fleet/claude expired") || !strings.Contains(err.Error(), "provider lock fleet/claude") {
		t.Errorf("lost with %v; want the plugin's reason and the lock's name", err)
	}
}

// TestLockEndsWithTheHostsContext: a host that goes away (its context
// ends, as its end of the stream closes when it dies) releases the lock
// in the plugin without a word from it.
func TestLockEndsWithTheHostsContext(t *testing.T) {
	t.Parallel()
	impl, holds, _ := holdingProvider()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := dialInMemory(t, impl).(sdk.Locker).Lock(ctx, sdk.LockRequest{Lock: fleetLock}); err != nil {
		t.Fatalf("lock: %v", err)
	}
	ph := waitFor(t, holds, "hold")
	cancel()
	waitFor(t, ph.released, "release after the host's end")
}

// TestLockRefusals: a lock that cannot be had reaches the host as an
// error that says why: a plugin that holds no locks (ErrUnsupported), a
// store that cannot be reached (its text), a wait the host gave up on
// (context.DeadlineExceeded, and the plugin stops waiting).
func TestLockRefusals(t *testing.T) {
	t.Parallel()
	gaveUp := make(chan struct{})
	tests := map[string]struct {
		impl sdk.Provider
		ctx  time.Duration
		is   error
		text string
	}{
		"no locker": {impl: errProvider{}, is: sdk.ErrUnsupported, text: "holds no locks"},
		"unreachable": {impl: lockProvider{lock: func(context.Context, sdk.LockRequest) (sdk.LockHold, error) {
			return nil, errors.New("etcd at 127.0.0.1:2379 is unreachable")
		}}, text: "etcd at 127.0.0.1:2379 is unreachable"},
		"held elsewhere": {impl: lockProvider{lock: func(ctx context.Context, _ sdk.LockRequest) (sdk.LockHold, error) {
			<-ctx.Done()
			close(gaveUp)
			return nil, ctx.Err()
		}}, ctx: 200 * time.Millisecond, is: context.DeadlineExceeded},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			hold, err := dialInMemory(t, tc.impl).(sdk.Locker).Lock(ctx, sdk.LockRequest{Lock: fleetLock})
			if err == nil {
				hold.Release(context.Background())
				t.Fatal("lock held; want it refused")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v; want it to match %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q; want it to say %q", err, tc.text)
			}
			if tc.ctx > 0 {
				waitFor(t, gaveUp, "the plugin giving up")
			}
		})
	}
}
