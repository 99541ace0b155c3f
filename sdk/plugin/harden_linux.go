package plugin

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// notDumpable clears the process's dumpable flag: no core dump even with a
// core_pattern pipe, and no ptrace or /proc/PID/mem by the same user.
func notDumpable() { _ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }

// parentDeathSignal asks the kernel to send sig when the parent process
// (strictly, the thread that started this one) ends.
func parentDeathSignal(sig syscall.Signal) {
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0)
}
