package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// lockPoll is how often a waiting process retries a held store lock: short
// next to a token request (hundreds of ms), long enough not to spin.
const lockPoll = 10 * time.Millisecond

// lockStore takes the cross-process lock on path (flock, released by the
// kernel if the holder dies, so a killed process never leaves a stale lock)
// and returns its release. The lock file is created 0600 next to the store
// and never deleted: deleting it would let two processes lock two different
// files of the same name. It waits until ctx ends.
func lockStore(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Create it 0600 ourselves: flock would create it with 0644-ish modes.
	if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	l := flock.New(path)
	start := time.Now()
	ok, err := l.TryLockContext(ctx, lockPoll)
	if err != nil || !ok {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || err == nil {
			return nil, fmt.Errorf("another process has held the refresh lock %s for %s; giving up (if no credhost is running, this is a bug: the lock is released when its holder exits)", path, time.Since(start).Round(time.Millisecond))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = l.Unlock() }, nil
}
