package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/credhost/credhost/sdk"
)

// bounded wraps a built-in run in the host's process so that each call
// ends when its context does, as a call to a plugin process does (gRPC
// gives up at the deadline). Without it an in-process provider that blocks
// (a named pipe opened by name, a stuck file system) would hold the chain
// past plugins.call_timeout and survive Ctrl-C. The call runs in its own
// goroutine; on timeout or cancel the host goes on without it and the
// goroutine finishes, or not, on its own.
//
// One exception: once the token endpoint has answered, the old refresh
// token is spent, and an answer dropped now leaves the store holding it
// (the next refresh is a reuse, and the server revokes the login). So a
// Refresh whose deadline passes gets refreshGrace more to hand over an
// answer already on its way; Ctrl-C ends it at once.
//
// A Save that outlives its deadline is not forgotten: saves counts the
// writes still running, and the host waits for them (waitSaves) before it
// releases the store's locks, so a late write can never land over a token
// another process saved after the locks were released.
type bounded struct {
	p            sdk.Provider
	refreshGrace time.Duration
	saves        *sync.WaitGroup
}

var (
	_ sdk.Provider = bounded{}
	_ sdk.Checker  = bounded{}
	_ sdk.Locker   = bounded{}
)

// errCallTimeout is the error of a bounded call whose deadline passed; it
// wraps context.DeadlineExceeded.
var errCallTimeout = fmt.Errorf("no answer within the call timeout: %w", context.DeadlineExceeded)

// boundCall runs f and returns its result, or ctx's error as soon as ctx
// ends: errCallTimeout for a deadline (after waiting grace more for the
// result), context.Canceled for a cancel (Ctrl-C).
func boundCall[T any](ctx context.Context, grace time.Duration, f func() (T, error)) (T, error) {
	if ctx.Done() == nil {
		return f() // nothing can end it early
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
	}
	var zero T
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return zero, ctx.Err()
	}
	select {
	case r := <-done: // already there: never drop a finished answer
		return r.v, r.err
	default:
	}
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case r := <-done:
			return r.v, r.err
		case <-t.C:
		}
	}
	return zero, errCallTimeout
}

func (b bounded) Info(ctx context.Context) (sdk.Info, error) {
	return boundCall(ctx, 0, func() (sdk.Info, error) { return b.p.Info(ctx) })
}

func (b bounded) Configure(ctx context.Context, req sdk.ConfigureRequest) error {
	_, err := boundCall(ctx, 0, func() (struct{}, error) { return struct{}{}, b.p.Configure(ctx, req) })
	return err
}

func (b bounded) Read(ctx context.Context) (sdk.Credential, error) {
	return boundCall(ctx, 0, func() (sdk.Credential, error) { return b.p.Read(ctx) })
}

func (b bounded) Save(ctx context.Context, cred sdk.Credential) error {
	b.saves.Add(1)
	_, err := boundCall(ctx, 0, func() (struct{}, error) {
		defer b.saves.Done()
		return struct{}{}, b.p.Save(ctx, cred)
	})
	return err
}

// waitSaves returns once every Save started through b has returned.
func (b bounded) waitSaves() { b.saves.Wait() }

func (b bounded) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	return boundCall(ctx, b.refreshGrace, func() (sdk.Credential, error) { return b.p.Refresh(ctx, cred) })
}

// Check runs the provider's checks, bounded like every call; a provider
// without checks answers sdk.ErrUnsupported, as a plugin process does.
func (b bounded) Check(ctx context.Context) ([]sdk.Finding, error) {
	c, ok := b.p.(sdk.Checker)
	if !ok {
		return nil, sdk.Unsupported("the provider has no checks")
	}
	return boundCall(ctx, 0, func() ([]sdk.Finding, error) { return c.Check(ctx) })
}

// Lock takes a lock the provider holds itself; a provider that holds none
// answers sdk.ErrUnsupported, as a plugin process does. It is not bounded
// like the other calls: ctx is the hold's lifetime, and the host bounds
// the wait for the lock itself (takeProviderLock).
func (b bounded) Lock(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error) {
	l, ok := b.p.(sdk.Locker)
	if !ok {
		return nil, sdk.Unsupported("the provider holds no locks of its own")
	}
	return l.Lock(ctx, req)
}
