//go:build unix

package host

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		// It would run as another user, or group: one credhost cannot end
		// when it goes, and that keeps what it is handed from this user.
		return fmt.Errorf("plugin %s is set-user-ID or set-group-ID (mode %s); a plugin runs as you: chmod ug-s %s", path, fi.Mode(), path)
	}
	if err := ownerOnly(path, "plugin", fi); err != nil {
		return err
	}
	// The directory of the file as opened, where the system says so: a
	// symlink swapped after the open must not move the check elsewhere.
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil || !filepath.IsAbs(real) {
		if real, err = filepath.EvalSymlinks(path); err != nil {
			return fmt.Errorf("plugin %s: %w", path, unwrapPath(err))
		}
	}
	if err := ownerOnlyDir(path, real); err != nil {
		return err
	}
	return checkInterpreter(path, f)
}

// ownerOnlyDir checks the directory holding file (the real path of
// plugin path) as ownerOnly does.
func ownerOnlyDir(path, file string) error {
	dir := filepath.Dir(file)
	di, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("plugin %s: its directory: %w", path, unwrapPath(err))
	}
	return ownerOnly(dir, "the directory of plugin "+path+",", di)
}

// checkInterpreter holds the interpreter a pinned script names on its #!
// line to the same rules as the script: the pin covers the script's bytes,
// and an interpreter others may rewrite would run whatever they like in
// its place. (An interpreter found through PATH, as by #!/usr/bin/env,
// is beyond what a pin can vouch for.)
func checkInterpreter(path string, f *os.File) error {
	head := make([]byte, 256)
	n, _ := f.ReadAt(head, 0)
	line, ok := strings.CutPrefix(string(head[:n]), "#!")
	if !ok {
		return nil
	}
	line, _, _ = strings.Cut(line, "\n")
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	interp := fields[0]
	real, err := filepath.EvalSymlinks(interp)
	if err != nil {
		return fmt.Errorf("plugin %s: its interpreter %s: %w", path, interp, unwrapPath(err))
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("plugin %s: its interpreter %s: %w", path, interp, unwrapPath(err))
	}
	if err := ownerOnly(real, "the interpreter of plugin "+path+",", fi); err != nil {
		return err
	}
	di, err := os.Stat(filepath.Dir(real))
	if err != nil {
		return fmt.Errorf("plugin %s: its interpreter %s: %w", path, interp, unwrapPath(err))
	}
	return ownerOnly(filepath.Dir(real), "the directory of the interpreter of plugin "+path+",", di)
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

// checkModuleEntry holds a pinned module directory, everything in it and
// the directory holding it to the owner rules of a pinned plugin. A symlink
// is not followed (treeHash refuses it).
func checkModuleEntry(path, what string, fi fs.FileInfo) error {
	return ownerOnly(path, what, fi)
}
