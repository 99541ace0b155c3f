package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/sdk"
)

// providerReleaseBound bounds how long the host waits for a provider to
// let its own lock go. A release that takes longer is left to the
// provider (the end of the hold's context releases it too, and a lease
// expires on its own): a refresh already done must not wait on it.
const providerReleaseBound = 5 * time.Second

// providerHold is a lock the store's provider holds for the host
// (sdk.Locker): for a plugin process, an open Lock stream.
type providerHold struct {
	l      sdk.Lock
	hold   sdk.LockHold
	cancel context.CancelFunc // ends the hold's lifetime
	logger hclog.Logger
	once   sync.Once
}

// release asks the provider to let the lock go, then ends the hold's
// context, which lets it go in any case.
func (h *providerHold) release() {
	h.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), providerReleaseBound)
		defer cancel()
		if err := h.hold.Release(ctx); err != nil {
			h.logger.Warn("the provider did not confirm the release of its lock; it ends with the hold", "lock", h.l.String(), "error", err.Error())
		}
		h.cancel()
	})
}

// lost says that the provider reported the lock lost (a lease expired):
// someone else may hold it now.
func (h *providerHold) lost() error {
	select {
	case <-h.hold.Lost():
	default:
		return nil
	}
	if err := h.hold.Err(); err != nil {
		return fmt.Errorf("the store's lock was lost while this process held it: %w", err)
	}
	return fmt.Errorf("the %s was lost while this process held it", h.l)
}

// takeProviderLock takes a lock the store's provider holds itself, waiting
// until ctx ends (refresh.timeout). The hold lives until released, not
// with ctx: the save may come after the refresh's time is up, and must
// still be under the lock.
func takeProviderLock(ctx context.Context, l sdk.Lock, _ *journal, p sdk.Provider, logger hclog.Logger) (heldLock, error) {
	locker, ok := p.(sdk.Locker)
	if !ok {
		return nil, fmt.Errorf("the store declares a %s, but its provider cannot take locks; not refreshing without it", l)
	}
	holdCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	type result struct {
		hold sdk.LockHold
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		hold, err := locker.Lock(holdCtx, sdk.LockRequest{Lock: l})
		done <- result{hold, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			cancel()
			return nil, providerLockErr(l, r.err, ctx, time.Since(start))
		}
		return &providerHold{l: l, hold: r.hold, cancel: cancel, logger: logger}, nil
	case <-ctx.Done():
		// Ending the hold's context makes the provider give up, and
		// releases a lock it got just now.
		cancel()
		go func() {
			if r := <-done; r.hold != nil {
				rctx, rcancel := context.WithTimeout(context.Background(), providerReleaseBound)
				_ = r.hold.Release(rctx)
				rcancel()
			}
		}()
		return nil, providerLockErr(l, ctx.Err(), ctx, time.Since(start))
	}
}

// providerLockErr says why the provider lock l could not be had.
func providerLockErr(l sdk.Lock, err error, ctx context.Context, waited time.Duration) error {
	switch {
	case errors.Is(err, sdk.ErrUnsupported):
		return fmt.Errorf("the store declares a %s, but its provider cannot take locks (%w); not refreshing without it", l, err)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the %s could not be had within %s (refresh.timeout: another machine holds it, or the store does not answer); not refreshing without it: %w", l, waited.Round(time.Millisecond), err)
	default:
		return fmt.Errorf("could not take the %s: %w; not refreshing without it", l, err)
	}
}
