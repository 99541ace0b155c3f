//go:build unix

package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startMode is the helper mode of a plugin that records its pid in dir,
// waits for n plugins to have done so and for delay, then serves mode.
func startMode(dir string, n int, delay time.Duration, mode string) string {
	return fmt.Sprintf("start:%s:%d:%s:%s", dir, n, delay, mode)
}

// pluginPids lists the pids the plugins of startMode recorded in dir, and
// which of them still run.
func pluginPids(t *testing.T, dir string) (all, alive []int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "pid-*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(f), "pid-"))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, pid)
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			alive = append(alive, pid)
		}
	}
	return all, alive
}

// waitAlive waits (generously) until at most n of the recorded plugins run.
func waitAlive(t *testing.T, dir string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, alive := pluginPids(t, dir)
		if len(alive) <= n || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProcessPluginsStartTogether: a chain of four process plugins, the
// last holding the token, starts them startWindow at a time (2 to 4, by
// the cores). Each plugin completes its handshake only once startWindow
// have started, so a chain that starts them one after another sees the
// first ones fail to start.
func TestProcessPluginsStartTogether(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(true,
		startMode(dir, startWindow, 0, "notfound"), startMode(dir, startWindow, 0, "notfound"),
		startMode(dir, startWindow, 0, "notfound"), startMode(dir, startWindow, 0, "found:D"))
	cfg.Plugins.StartTimeout = Duration(2 * time.Minute)
	h, logs := newTestHost(t, cfg)
	res, err := h.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if res.Provider != "p3" {
		t.Errorf("the credential came from %s; want p3", res.Provider)
	}
	if strings.Contains(logs.String(), "provider failed") {
		t.Errorf("a plugin failed (one waited for the others to start, in vain):\n%s", logs)
	}
	h.Close()
	if alive := waitAlive(t, dir, 0); len(alive) != 0 {
		t.Errorf("plugin processes %v still run after Close", alive)
	}
}

// TestSlowEarlierPluginStillWins: the first provider's plugin starts slowly,
// the second's at once; both hold a token. The first in chain order wins,
// however the starts finish, and the second is ended.
func TestSlowEarlierPluginStillWins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(true, startMode(dir, 0, 500*time.Millisecond, "found:A"), startMode(dir, 0, 0, "found:B"))
	h, _ := newTestHost(t, cfg)
	defer h.Close()
	res, err := h.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if res.Provider != "p0" || res.Credential.AccessToken != "tok-secret-A" {
		t.Errorf("the credential came from %s; want p0, the first in chain order", res.Provider)
	}
	h.ending.Wait()
	if alive := waitAlive(t, dir, 1); len(alive) != 1 {
		t.Errorf("plugin processes %v run; want only the winner's", alive)
	}
}

// TestUnneededPluginsAreEnded: in a chain of four process plugins that all
// hold a token, the first answers; those started ahead are ended soon after
// the call (not only at Close), none is left after Close, and a later walk
// that knows the first holds a usable token starts none after it. The first
// startWindow plugins complete their handshake only once all of them have
// started, so each has recorded its pid before the first can answer.
func TestUnneededPluginsAreEnded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(true,
		startMode(dir, startWindow, 0, "found:A"), startMode(dir, startWindow, 0, "found:B"),
		startMode(dir, startWindow, 0, "found:C"), startMode(dir, startWindow, 0, "found:D"))
	cfg.Plugins.StartTimeout = Duration(2 * time.Minute)
	h, _ := newTestHost(t, cfg)
	defer h.Close()
	res, err := h.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if res.Provider != "p0" {
		t.Errorf("the credential came from %s; want p0", res.Provider)
	}
	h.ending.Wait() // the starts begun ahead are done and being ended
	alive := waitAlive(t, dir, 1)
	if len(alive) != 1 {
		t.Fatalf("plugin processes %v run after the call; want only the winner's", alive)
	}
	started, _ := pluginPids(t, dir)
	h.forget("")
	if _, err := h.Token(context.Background()); err != nil {
		t.Fatalf("second Token: %v", err)
	}
	h.ending.Wait()
	again, now := pluginPids(t, dir)
	if len(started) != startWindow {
		t.Errorf("%d plugins started for the first walk; want %d at once", len(started), startWindow)
	}
	if len(again) != len(started) || !slices.Equal(now, alive) {
		t.Errorf("the second walk started plugins (%d recorded, %d before; running %v, before %v); the first still holds a usable token", len(again), len(started), now, alive)
	}
	h.Close()
	if alive := waitAlive(t, dir, 0); len(alive) != 0 {
		t.Errorf("plugin processes %v still run after Close", alive)
	}
}

// TestStartFailureOfALaterPlugin: a plugin that fails to start is reported
// as it always was when the walk reaches it, and not at all when an earlier
// provider answers.
func TestStartFailureOfALaterPlugin(t *testing.T) {
	t.Parallel()
	alone, _ := newTestHost(t, testConfig(true, "notfound", "exit"))
	_, want := alone.Token(context.Background())
	alone.Close()
	var ce *ChainError
	if !errors.As(want, &ce) || len(ce.Attempts) != 2 || ce.Attempts[1].Op != "start" {
		t.Fatalf("a chain whose second plugin exits: %v; want a chain error with its start failure", want)
	}

	t.Run("reached", func(t *testing.T) {
		t.Parallel()
		h, logs := newTestHost(t, testConfig(true, "notfound", "exit", "found:C"))
		defer h.Close()
		res, err := h.Token(context.Background())
		if err != nil || res.Provider != "p2" {
			t.Fatalf("Token: %v from %q; want p2's credential", err, res.Provider)
		}
		if !strings.Contains(logs.String(), ce.Attempts[1].reason()) {
			t.Errorf("the log does not report p1's start failure %q:\n%s", ce.Attempts[1].reason(), logs)
		}
		h2, _ := newTestHost(t, testConfig(true, "notfound", "exit"))
		defer h2.Close()
		_, err = h2.Token(context.Background())
		if err == nil || err.Error() != want.Error() {
			t.Errorf("chain error %q; want %q, as a start on reaching it reports", err, want)
		}
	})
	t.Run("not reached", func(t *testing.T) {
		t.Parallel()
		h, logs := newTestHost(t, testConfig(true, "found:A", "exit"))
		res, err := h.Token(context.Background())
		if err != nil || res.Provider != "p0" {
			t.Fatalf("Token: %v from %q; want p0's credential", err, res.Provider)
		}
		h.Close()
		if l := logs.String(); strings.Contains(l, ce.Attempts[1].reason()) || strings.Contains(l, "provider failed") {
			t.Errorf("the log reports the start failure of the plugin the walk never reached:\n%s", l)
		}
	})
}
