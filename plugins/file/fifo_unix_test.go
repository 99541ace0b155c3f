//go:build unix

package file_test

import (
	"context"
	"errors"
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
