package host

import (
	"os"
	"strconv"
)

// fdPath is how a child started with f as its first extra file (fd 3)
// executes it: /proc/self/fd/3, which is f itself whatever its path names
// by then. A #! script works too: the interpreter opens that path, and fd 3
// is still open in it. ok is false without /proc.
func fdPath(f *os.File) (string, bool) {
	if _, err := os.Stat("/proc/self/fd/" + strconv.Itoa(int(f.Fd()))); err != nil {
		return "", false
	}
	return "/proc/self/fd/3", true
}
