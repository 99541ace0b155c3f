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

// TestTrustedSocketRefusesAnotherUsersDirectory: a client must not ask a
// daemon whose socket sits in a directory another user made (first, in the
// shared temporary directory) or could write; the daemon's own socket, as
// Listen makes it, is trusted, and its peer is this user.
func TestTrustedSocketRefusesAnotherUsersDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(privateTempDir(t), "credhost.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := TrustedSocket(path); err != nil {
		t.Errorf("the daemon's own socket: %v", err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := PeerIsSelf(c); err != nil {
		t.Errorf("PeerIsSelf of this process's daemon: %v", err)
	}
	c.Close()

	open := privateTempDir(t)
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", filepath.Join(open, "credhost.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := TrustedSocket(filepath.Join(open, "credhost.sock")); err == nil || !strings.Contains(err.Error(), open) {
		t.Errorf("a socket in a directory anyone can write: %v; want refused, naming the directory", err)
	}
	if os.Geteuid() == 0 {
		theirs := privateTempDir(t)
		if err := os.Chown(theirs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := TrustedSocket(filepath.Join(theirs, "credhost.sock")); err == nil {
			t.Error("a directory of another user's is trusted")
		}
	}
}
