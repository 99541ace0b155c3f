//go:build unix

package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openReadFlags opens the resolved credentials file for reading without
// ever blocking (a named pipe opens at once and is refused after fstat)
// and without following a symlink put in its place after resolve; a
// terminal opened by mistake never becomes the controlling one.
const openReadFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOFOLLOW | syscall.O_NOCTTY

// isLoop reports the error O_NOFOLLOW gives on a symlink.
func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

// keepOwner gives the temporary file tmp the owner and group of old, the
// file it replaces, when they differ from what tmp was created with. A
// different owner it cannot keep is an error: the save would hand a
// user's file to another account. A group it cannot keep is not (mode
// 0600 gives the group nothing).
func keepOwner(tmp *os.File, old fs.FileInfo) error {
	was, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	st, err := tmp.Stat()
	if err != nil {
		return err
	}
	now, ok := st.Sys().(*syscall.Stat_t)
	if !ok || (now.Uid == was.Uid && now.Gid == was.Gid) {
		return nil
	}
	err = tmp.Chown(int(was.Uid), int(was.Gid))
	switch {
	case err == nil:
		return nil
	case now.Uid != was.Uid:
		return fmt.Errorf("cannot keep the file's owner (uid %d): %w", was.Uid, unwrapPath(err))
	}
	return nil
}
