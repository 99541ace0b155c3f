//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExecSignals: a SIGINT sent to credhost alone is not passed on (the
// terminal delivers Ctrl-C to the command itself; passing it on would make
// it two), and does not end credhost; a SIGTERM is passed on.
func TestExecSignals(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
	log, ready := filepath.Join(s.home, "log"), filepath.Join(s.home, "ready")
	script := `trap 'echo int >> "$1"' INT; trap 'echo term >> "$1"; exit 0' TERM; : > "$2"; while :; do sleep 0.02; done`
	cmd := exec.Command(credhostBin, "exec", "--", "sh", "-c", script, "sh", log, ready)
	cmd.Env = s.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	if data, _ := os.ReadFile(log); strings.Contains(string(data), "int") {
		t.Errorf("the command got a SIGINT that was sent to credhost alone")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("credhost exec: %v; want exit 0 (the command exited 0 on TERM)", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("SIGTERM was not passed on: the command is still running")
	}
	if data, _ := os.ReadFile(log); !strings.Contains(string(data), "term") {
		t.Errorf("the command did not see the SIGTERM")
	}
}
