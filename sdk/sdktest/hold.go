package sdktest

import (
	"context"
	"sync"

	"github.com/credhost/credhost/sdk"
)

// Hold is an sdk.LockHold for a Fake's LockF: a test loses it with Lose
// and learns with Released whether the holder let it go. The lock it
// stands for is in the test's hands; a real store's is not, which is why
// it lives here and not in sdk. It ends when the context it was made
// with ends, as the contract of sdk.Locker asks.
type Hold struct {
	mu       sync.Mutex
	err      error
	lost     chan struct{}
	released chan struct{}
	once     sync.Once
}

var _ sdk.LockHold = (*Hold)(nil)

// NewHold returns a held Hold, released when ctx ends (the hold's
// lifetime, the ctx given to Lock) or by Release.
func NewHold(ctx context.Context) *Hold {
	h := &Hold{lost: make(chan struct{}), released: make(chan struct{})}
	go func() {
		select {
		case <-ctx.Done():
			h.release()
		case <-h.released:
		}
	}()
	return h
}

// Lose marks the lock lost for err, as a lease that expired; only the
// first call counts.
func (h *Hold) Lose(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
		close(h.lost)
	}
}

// Released is closed once the hold was let go (Release or its context's
// end).
func (h *Hold) Released() <-chan struct{} { return h.released }

// Lost is closed once Lose was called.
func (h *Hold) Lost() <-chan struct{} { return h.lost }

// Err is the error given to Lose; nil while held.
func (h *Hold) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Release lets the hold go.
func (h *Hold) Release(context.Context) error {
	h.release()
	return nil
}

func (h *Hold) release() { h.once.Do(func() { close(h.released) }) }
