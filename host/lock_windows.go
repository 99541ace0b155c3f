package host

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

var errIsLink = errors.New("is a symbolic link")

// openNoFollow refuses a symlink (or junction) at path, then opens it.
// Windows has no FIFOs in the file system, so nothing can block the open.
func openNoFollow(path string, flag int, perm fs.FileMode) (*os.File, error) {
	if st, err := os.Lstat(path); err == nil && st.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
		return nil, errIsLink
	}
	return os.OpenFile(path, flag, perm)
}

func isLinkError(err error) bool { return errors.Is(err, errIsLink) }

func tryLockFile(f *os.File) (bool, error) {
	ol := new(windows.Overlapped)
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	}
	return false, err
}

func unlockFile(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}

// fileOwner is not checked on Windows: the user's profile directories are
// private to the user by their ACLs.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }

func fileOwnerGroup(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

func fileLinks(fs.FileInfo) (uint64, bool) { return 0, false }

func stampOf(st fs.FileInfo) dirStamp { return dirStamp{mtime: st.ModTime().UnixNano()} }

func touchNoFollow(path string, t time.Time) error { return os.Chtimes(path, t, t) }

func syscallRmdir(path string) error { return os.Remove(path) }
