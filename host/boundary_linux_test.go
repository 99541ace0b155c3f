package host

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// dumpable is the process's PR_GET_DUMPABLE flag.
func dumpable() string {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return "error: " + err.Error()
	}
	return strconv.Itoa(v)
}
