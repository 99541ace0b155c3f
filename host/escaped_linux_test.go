package host

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestPluginExitingAtOnceIsSeenDespiteAHelperHoldingItsPipes: a plugin
// that exits at once, leaving a helper in a session of its own (beyond its
// process group) holding its stdout and stderr open, is reported as having
// exited, with its status, not as one that printed no handshake within
// plugins.start_timeout: go-plugin waits for both pipes to end before it
// reaps a plugin, so they end shortly after the plugin does.
func TestPluginExitingAtOnceIsSeenDespiteAHelperHoldingItsPipes(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid on PATH")
	}
	script := filepath.Join(t.TempDir(), "plugin.sh")
	body := "#!/bin/sh\nsetsid sleep 20 </dev/null &\necho leaving a helper behind >&2\nexit 3\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Source = "test"
	cfg.Plugins.StartTimeout = Duration(5 * time.Second)
	cfg.Providers = []ProviderConfig{{Name: "p0", Line: 1, Column: 3, Command: script}}
	h, _ := newLevelHost(t, cfg, 0)
	_, err := h.Token(context.Background())
	if err == nil {
		t.Fatal("Token succeeded with a plugin that exits at once")
	}
	if !strings.Contains(err.Error(), "exited before the plugin handshake (exit status 3)") || !strings.Contains(err.Error(), "leaving a helper behind") {
		t.Errorf("Token: %v; want it to say the plugin exited (status 3), with its last stderr line", err)
	}
}

// TestPluginsLastStderrLineSurvivesARelayStillBehindAfterTheGrace: a
// plugin that writes its last line on stderr and exits while the relay
// has not read it yet (held back by a test hook past pipeGrace) still has
// that line in the start error: the end of the grace stops the relay only
// once what was in the pipe has been read.
func TestPluginsLastStderrLineSurvivesARelayStillBehindAfterTheGrace(t *testing.T) {
	// Not parallel: the hook is package-wide.
	testHookStderrReadDelay.Store(int64(pipeGrace + time.Second))
	t.Cleanup(func() { testHookStderrReadDelay.Store(0) })
	script := filepath.Join(t.TempDir(), "plugin.sh")
	body := "#!/bin/sh\necho my last words >&2\nexit 3\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Source = "test"
	cfg.Plugins.StartTimeout = Duration(30 * time.Second)
	cfg.Providers = []ProviderConfig{{Name: "p0", Line: 1, Column: 3, Command: script}}
	h, _ := newLevelHost(t, cfg, 0)
	_, err := h.Token(context.Background())
	if err == nil {
		t.Fatal("Token succeeded with a plugin that exits at once")
	}
	if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "my last words") {
		t.Errorf("Token: %v; want it to say the plugin exited (status 3), with its last stderr line", err)
	}
}

// TestAHelperWritingForeverOnStderrCannotHideThePluginsExit: a helper the
// plugin left in a session of its own that writes on the plugin's stderr
// without end does not keep the relay reading: once pipeGrace is over, at
// most what fits a bound more is read, and the plugin is reported as
// having exited, not as one that printed no handshake in time.
func TestAHelperWritingForeverOnStderrCannotHideThePluginsExit(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid on PATH")
	}
	if _, err := exec.LookPath("yes"); err != nil {
		t.Skip("no yes on PATH")
	}
	script := filepath.Join(t.TempDir(), "plugin.sh")
	body := "#!/bin/sh\nsetsid sh -c 'yes helper noise >&2' </dev/null &\nexit 3\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Source = "test"
	cfg.Plugins.StartTimeout = Duration(60 * time.Second)
	cfg.Providers = []ProviderConfig{{Name: "p0", Line: 1, Column: 3, Command: script}}
	h, _ := newLevelHost(t, cfg, hclog.Error)
	_, err := h.Token(context.Background())
	if err == nil {
		t.Fatal("Token succeeded with a plugin that exits at once")
	}
	if !strings.Contains(err.Error(), "exited before the plugin handshake (exit status 3)") {
		t.Errorf("Token: %v; want it to say the plugin exited (status 3)", err)
	}
}
