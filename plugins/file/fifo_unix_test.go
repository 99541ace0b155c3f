//go:build unix

package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// A named pipe at the path must be refused, not opened: opening one blocks
// until a writer comes, which would hang Read and Save for good.
func TestNamedPipeIsAFault(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".credentials.json")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("cannot make a named pipe here: %v", err)
	}
	p := configured(t, path)
	ops := map[string]func() error{
		"Read": func() error { _, err := p.Read(context.Background()); return err },
		"Save": func() error { return p.Save(context.Background(), sdk.Credential{AccessToken: "a"}) },
	}
	for name, op := range ops {
		done := make(chan error, 1)
		go func() { done <- op() }()
		select {
		case err := <-done:
			if err == nil || errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), path+": not a regular file (a named pipe)") {
				t.Errorf("%s: %v; want a fault naming the path", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s blocked on a named pipe", name)
		}
	}
}

// TestNamedPipeSwappedInNeverBlocks: a named pipe put in place of the file
// between a check of the path and its open (another local user who can
// write the directory, racing) must never make Read or Save block: the
// file is opened first, without blocking, and the descriptor checked.
func TestNamedPipeSwappedInNeverBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, ".credentials.json")
	regular := filepath.Join(dir, "regular")
	fifo := filepath.Join(dir, "fifo")
	if err := os.WriteFile(regular, []byte(`{"claudeAiOauth":{"accessToken":"at","refreshToken":"rt"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("cannot make a named pipe here: %v", err)
	}
	stop := make(chan struct{})
	swapped := make(chan struct{})
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
			tmp := filepath.Join(dir, "next")
			_ = os.Link(src, tmp)
			_ = os.Rename(tmp, path)
		}
	}()
	defer func() { close(stop); <-swapped }()

	p := configured(t, path)
	const bound = 5 * time.Second // generous: a blocked open never returns
	for i := range 5000 {
		done := make(chan error, 1)
		go func() {
			if i%2 == 0 {
				_, err := p.Read(context.Background())
				done <- err
				return
			}
			done <- p.Save(context.Background(), sdk.Credential{AccessToken: "at", RefreshToken: "rt"})
		}()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, sdk.ErrNotFound) && !strings.Contains(err.Error(), "not a regular file") {
				t.Fatalf("call %d: %v; want success or a refusal of the named pipe", i, err)
			}
		case <-time.After(bound):
			// Unblock the stuck open so the test can end.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Fatalf("call %d blocked on the named pipe swapped in", i)
		}
	}
}
