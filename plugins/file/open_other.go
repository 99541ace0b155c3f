//go:build !unix

package file

import (
	"io/fs"
	"os"
)

// openReadFlags opens the resolved credentials file for reading; Windows
// has neither named pipes in the file system nor O_NOFOLLOW.
const openReadFlags = os.O_RDONLY

// isLoop reports a symlink refused by O_NOFOLLOW: never, here.
func isLoop(error) bool { return false }

// keepOwner does nothing on Windows: a replaced file's ACL, not a uid,
// says who may read it, and the rename keeps the directory's inheritance.
func keepOwner(*os.File, fs.FileInfo) error { return nil }
