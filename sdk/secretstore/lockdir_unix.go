//go:build unix

package secretstore

import (
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// privateModes: the lock directory's mode must be 0700.
const privateModes = true

func ownedByMe(st fs.FileInfo) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(s.Uid) == os.Geteuid()
}

func userDirName() string { return "credhost-" + strconv.Itoa(os.Geteuid()) }
