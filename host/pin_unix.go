//go:build unix

package host

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkPinnedOwner refuses a pinned plugin that someone other than its
// owner may change, or whose owner is neither this user nor root: the file
// (as opened) and the directory it is in must be writable by their owner
// only. A pin says what the user trusts; a file others may rewrite or
// replace between the check and a later run is not that.
func checkPinnedOwner(path string, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("plugin %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("plugin %s is not a regular file", path)
	}
	if err := ownerOnly(path, "plugin", fi); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", path, unwrapPath(err))
	}
	dir := filepath.Dir(real)
	di, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("plugin %s: its directory: %w", path, unwrapPath(err))
	}
	return ownerOnly(dir, "the directory of plugin "+path+",", di)
}

func ownerOnly(path, what string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s %s is writable by group or others (mode %04o); a pinned plugin must be writable by its owner only: chmod go-w %s", what, path, fi.Mode().Perm(), path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != 0 && uid != os.Getuid() {
			return fmt.Errorf("%s %s is owned by uid %d; a pinned plugin must be owned by you or root", what, path, uid)
		}
	}
	return nil
}

// openNoBlock opens path for reading without blocking on a FIFO planted
// in its place.
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
