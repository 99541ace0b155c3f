//go:build unix

package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// PrivateDir makes sure dir, where the socket lives, reaches no other
// user: it is created (mode 0700) when missing, and refused unless it is a
// directory (not a link) owned by this user with mode 0700. The error says
// how to fix it.
func PrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory (%s); remove it, or choose another --socket", dir, st.Mode().Type())
	}
	if uid := owner(st); uid != os.Geteuid() {
		return fmt.Errorf("socket directory %s belongs to uid %d, not to this user (uid %d), who could then reach the socket; remove it, or choose another --socket", dir, uid, os.Geteuid())
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		return fmt.Errorf("socket directory %s has mode %04o, which lets other users reach the socket; it must be 0700: chmod 700 %s", dir, perm, dir)
	}
	return nil
}

// privateMode sets the socket's mode to 0600.
func privateMode(path string) error { return os.Chmod(path, 0o600) }

// privateSocket refuses a socket that is not this user's with mode 0600.
func privateSocket(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if st.Mode()&fs.ModeSocket == 0 || owner(st) != os.Geteuid() || st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("socket %s is not a socket of this user's with mode 0600 (%s, uid %d); set SocketMode=0600 in the socket unit", path, st.Mode(), owner(st))
	}
	return nil
}

func owner(st fs.FileInfo) int {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid)
	}
	return -1
}

func openLock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
}

func tryLock(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return false, nil
	}
	return false, err
}

func unlockFile(f *os.File) { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// connRefused reports the error of a dial to a socket nobody listens on.
func connRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// TrustedSocket reports whether a client may trust the daemon behind the
// socket at path: its directory must be this user's, not a link, and
// reach no other user (as Listen makes it), and the socket this user's.
// Otherwise another local user could have made the directory first (the
// default one under the shared temporary directory, when
// $XDG_RUNTIME_DIR is unset) and put a daemon of their own in it, which
// would hand the caller a token of their choosing. A client calls it
// before dialing and PeerIsSelf on the connection.
func TrustedSocket(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if !st.IsDir() || owner(st) != os.Geteuid() || st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("socket directory %s is not a directory of this user's with mode 0700 (%s, uid %d): another user may have made it; not asking the daemon there", dir, st.Mode(), owner(st))
	}
	st, err = os.Lstat(path)
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if st.Mode()&fs.ModeSocket == 0 || owner(st) != os.Geteuid() {
		return fmt.Errorf("socket %s is not a socket of this user's (%s, uid %d); not asking the daemon there", path, st.Mode(), owner(st))
	}
	return nil
}
