//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestInterruptEndsATokenBlockedOnAFIFO: while a named pipe and a regular
// file take turns at the store's path (another local user racing), no
// `credhost token` may hang; one still running after a second is
// interrupted (SIGINT, Ctrl-C) and must end promptly, with a non-zero
// exit.
func TestInterruptEndsATokenBlockedOnAFIFO(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	dir := filepath.Join(s.home, ".claude")
	path := s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
	regular, fifo := filepath.Join(dir, "regular"), filepath.Join(dir, "fifo")
	if err := os.Rename(path, regular); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("cannot make a named pipe here: %v", err)
	}
	cfg := s.writeConfig("version: 1\nplugins: {call_timeout: 1h}\nproviders:\n  - {name: file, plugin: file}\n")
	stop, swapped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(swapped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			src := regular
			if i%2 == 1 {
				src = fifo
			}
			next := filepath.Join(dir, "next")
			_ = os.Link(src, next)
			_ = os.Rename(next, path)
		}
	}()
	defer func() { close(stop); <-swapped }()

	const runs = 100
	interrupted := 0
	for i := range runs {
		cmd := exec.Command(credhostBin, "token", "--config", cfg)
		cmd.Env, cmd.Dir = s.env, s.home
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			continue // answered on its own: the pipe was refused or the file read
		case <-time.After(time.Second):
		}
		interrupted++
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			// A run that was only slow (a loaded machine) may finish
			// its token just as Ctrl-C arrives: that is exit 0 with the
			// token printed. Exit 0 without one is a swallowed Ctrl-C.
			if err == nil && stdout.Len() == 0 {
				t.Errorf("run %d: exit 0 after Ctrl-C without a token; want a non-zero exit", i)
			}
		case <-time.After(2 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("run %d: still running 2s after Ctrl-C, blocked on the named pipe\nstderr:\n%s", i, stderr.String())
		}
	}
	t.Logf("%d of %d runs needed Ctrl-C", interrupted, runs)
}
