//go:build unix

package plugin

import "golang.org/x/sys/unix"

func disableCoreDumps() {
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	notDumpable()
}
