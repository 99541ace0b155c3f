//go:build unix

package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartEndsWhatEverTheChildrenLeftOpen: a plugin that exits at once
// but leaves a helper in a session of its own (beyond its process group,
// so beyond the kill) holding its stdout and stderr open: Start used to
// wait for those pipes to end, that is for the helper, for as long as it
// lived. It fails within its start timeout, saying the plugin exited.
func TestStartEndsWhatEverTheChildrenLeftOpen(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid on PATH")
	}
	script := filepath.Join(t.TempDir(), "plugin.sh")
	// The helper lives 20 s; the test's generous bound is 10 s.
	body := "#!/bin/sh\nsetsid sleep 20 &\necho leaving a helper behind >&2\nexit 3\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p, err := Start(exec.Command(script), Options{StartTimeout: 3 * time.Second})
	took := time.Since(start)
	if err == nil {
		p.Close()
		t.Fatal("a plugin that printed no handshake started")
	}
	if took > 10*time.Second {
		t.Errorf("Start took %s; want it bounded by its start timeout (3s), not by the helper's life", took.Round(time.Millisecond))
	}
	if !strings.Contains(err.Error(), "the plugin exited (exit status 3)") || !strings.Contains(err.Error(), "leaving a helper behind") {
		t.Errorf("Start: %v; want it to say the plugin exited, with its stderr", err)
	}
}
