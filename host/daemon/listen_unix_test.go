//go:build unix

package daemon

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func privateTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestListenLeavesASocketSomeoneListensOn: a socket that accepts
// connections belongs to a live process (a daemon that hangs, or whose
// lock file was removed; the service manager holding it for activation),
// even when nobody holds the lock: it is not removed and bound again.
func TestListenLeavesASocketSomeoneListensOn(t *testing.T) {
	t.Parallel()
	path := filepath.Join(privateTempDir(t), "credhost.sock")
	hung, err := net.Listen("unix", path) // listens, never accepts
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	ln, err := Listen(path)
	if err == nil {
		ln.Close()
		t.Fatal("Listen took over a socket a live process listens on")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("the error does not name the socket: %v", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live process's socket is gone: %v", err)
	}
	c.Close()
}
