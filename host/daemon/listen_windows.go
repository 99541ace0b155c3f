package daemon

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// PrivateDir creates dir, where the socket lives, when missing. Windows has
// no Unix modes to check: the default directory is under %LOCALAPPDATA%,
// private to the user by its ACL, and that ACL is the only protection of
// the socket there (no peer check exists for AF_UNIX on Windows).
func PrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory; remove it, or choose another --socket", dir)
	}
	return nil
}

// privateMode: a Windows socket file has no Unix mode; the directory's
// ACL guards it.
func privateMode(string) error { return nil }

func privateSocket(string) error { return nil }

func openLock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// lockOffset: the lock covers a byte far past the pid, since a Windows
// lock also stops other processes from reading the bytes it covers.
const lockOffset = 1 << 30

func tryLock(f *os.File) (bool, error) {
	ol := &windows.Overlapped{Offset: lockOffset}
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	}
	return false, err
}

func unlockFile(f *os.File) {
	_ = windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &windows.Overlapped{Offset: lockOffset})
}

// connRefused reports the error of a dial to a socket nobody listens on.
func connRefused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, syscall.ECONNREFUSED)
}

// TrustedSocket: Windows has no Unix owner or modes to check; the default
// directory under %LOCALAPPDATA% is private to the user by its ACL.
func TrustedSocket(string) error { return nil }
