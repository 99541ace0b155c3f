package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPinnedPluginRunsOnlyTheBytesItVerified swaps the pinned plugin with
// a payload (renameat2 RENAME_EXCHANGE, in a tight loop) while the host
// starts it again and again. Whatever the timing, the payload must never
// run: either the host verified the pinned bytes and runs exactly those,
// or it hashed the payload and refuses it.
//
// It runs once for Linux's route (the hashed descriptor) and once for the
// private copy other systems use.
func TestPinnedPluginRunsOnlyTheBytesItVerified(t *testing.T) {
	t.Run("descriptor", func(t *testing.T) { testPinnedSwap(t) })
	t.Run("private copy", func(t *testing.T) {
		runFromDescriptor = func(*os.File) (string, bool) { return "", false }
		t.Cleanup(func() { runFromDescriptor = fdPath })
		testPinnedSwap(t)
	})
}

func testPinnedSwap(t *testing.T) {
	dir := t.TempDir()
	pinned, payload, marker := filepath.Join(dir, "plugin"), filepath.Join(dir, "payload"), filepath.Join(dir, "payload-ran")
	sum := pluginScript(t, pinned, "")
	pluginScript(t, payload, fmt.Sprintf("echo ran >> %q", marker))

	stop := make(chan struct{})
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, pinned, unix.AT_FDCWD, payload, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("rename exchange: %v", err)
				return
			}
			swaps.Add(1)
			// A pause far shorter than a plugin start, so the swap still
			// lands between any check and exec, without spinning a core
			// the rest of the suite needs.
			time.Sleep(10 * time.Microsecond)
		}
	})
	// At least 50 starts, and on until the pinned plugin has run a few
	// times (most starts open the payload and are refused at once).
	var ran, refused, slow int
	for i := 0; i < 200 && (i < 40 || ran < 5); i++ {
		cfg := testConfig(true, "notfound")
		cfg.Providers[0].Command, cfg.Providers[0].Args, cfg.Providers[0].SHA256 = pinned, nil, sum
		h, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := h.Token(context.Background())
		h.Close()
		switch {
		case err == nil && res.Credential.AccessToken == "tok-secret-A":
			ran++
		case errors.Is(err, errPinMismatch):
			refused++
		case err != nil && strings.Contains(err.Error(), "timeout while waiting for plugin to start"):
			// A loaded machine; the marker still tells if the payload ran.
			slow++
		default:
			t.Errorf("Token: %v; want the pinned plugin's token or a checksum mismatch", err)
		}
	}
	close(stop)
	wg.Wait()
	if data, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the payload ran %d times (pinned plugin started %d times, refused %d)", strings.Count(string(data), "ran"), ran, refused)
	}
	t.Logf("%d swaps; the pinned plugin ran %d times, was refused %d times, too slow to start %d times", swaps.Load(), ran, refused, slow)
	if ran == 0 {
		t.Errorf("the pinned plugin never ran: the test proved nothing")
	}
}

// TestPluginProcessDumpsNoCore: a plugin built with the SDK runs with
// RLIMIT_CORE 0 and is not dumpable.
func TestPluginProcessDumpsNoCore(t *testing.T) {
	t.Parallel()
	h, _ := newTestHost(t, testConfig(true, "envdump"))
	res, err := h.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pid := res.Credential.Metadata["pid"]
	limits, err := os.ReadFile("/proc/" + pid + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Max core file size\s+0\s+0\s`).Match(limits) {
		t.Errorf("plugin %s limits:\n%s\nwant a core file size of 0 (soft and hard)", pid, limits)
	}
	if d := res.Credential.Metadata["dumpable"]; d != "0" {
		t.Errorf("plugin %s: PR_GET_DUMPABLE %q; want 0", pid, d)
	}
}
