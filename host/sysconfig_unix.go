//go:build unix

package host

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

// SystemConfigPath is where an administrator deploys a config for every
// user of the machine: /etc/credhost/config.yaml, on macOS
// /Library/Application Support/credhost/config.yaml. LoadConfig reads it
// when no user config exists.
func SystemConfigPath() string {
	if runtime.GOOS == "darwin" {
		return "/Library/Application Support/credhost/config.yaml"
	}
	return "/etc/credhost/config.yaml"
}

// checkSystemOwner refuses a system config that anyone but root (or this
// user) may change: the file as opened, and the directory it is in.
func checkSystemOwner(path string, f *os.File, fi fs.FileInfo) error {
	if err := systemOwnerOnly(path, "", fi); err != nil {
		return err
	}
	// The directory of the file as opened, where the system says so; a
	// symlink swapped after the open must not move the check elsewhere.
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil || !filepath.IsAbs(real) {
		if real, err = filepath.EvalSymlinks(path); err != nil {
			return fmt.Errorf("cannot resolve it: %w", unwrapPath(err))
		}
	}
	dir := filepath.Dir(real)
	di, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("its directory: %w", unwrapPath(err))
	}
	return systemOwnerOnly(dir, "its directory ", di)
}

// systemOwnerOnly holds one file or directory of the system config to
// "owned by root or this user, writable by its owner only". Whoever can
// write the system config chooses the plugins every user's credentials
// pass through (and can point them at their own), so a config another
// user could rewrite or replace is not the administrator's.
func systemOwnerOnly(path, what string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s%s is writable by group or others (mode %04o): whoever can change the system config chooses the plugins every user's credentials pass through; make it writable by root only: chmod go-w %s", what, path, fi.Mode().Perm(), strconv.Quote(path))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != 0 && uid != os.Getuid() {
			return fmt.Errorf("%s%s is owned by uid %d, not root: whoever owns the system config chooses the plugins every user's credentials pass through; chown root %s", what, path, uid, strconv.Quote(path))
		}
	}
	return nil
}
