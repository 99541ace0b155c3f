//go:build unix

package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFIFOAtLockPathDegradesWithinTimeout plants a named pipe at each lock
// path and at the record: opening it must not block, and the refresh
// degrades, naming the path, well within refresh.timeout.
func TestFIFOAtLockPathDegradesWithinTimeout(t *testing.T) {
	t.Parallel()
	for i, name := range []string{"flock", "dir lock", "retry-after record"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "cfg")
			os.MkdirAll(dir, 0o700)
			locks := claudeLikeLocks(dir)
			planted := []string{locks[0].Path, locks[1].Path, locks[0].Path + ".retry-after"}[i]
			if err := syscall.Mkfifo(planted, 0o600); err != nil {
				t.Fatal(err)
			}
			r := newRig(t, rigOptions{})
			r.host.cfg.Refresh.Timeout = Duration(2 * time.Second)
			r.store.locks = locks
			r.seed(testNow.Add(-time.Minute))
			done := make(chan Result, 1)
			go func() {
				res, _ := r.host.Token(context.Background())
				done <- res
			}()
			select {
			case res := <-done:
				if !res.Degraded || !strings.Contains(res.DegradedReason.Error(), planted) || r.srv.Requests() != 0 {
					t.Errorf("degraded %v (%v), %d requests; want a refused refresh naming %s", res.Degraded, res.DegradedReason, r.srv.Requests(), planted)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Token blocked on the FIFO at %s past refresh.timeout", planted)
			}
		})
	}
}
