package plugin

import "golang.org/x/sys/unix"

// notDumpable clears the process's dumpable flag: no core dump even with a
// core_pattern pipe, and no ptrace or /proc/PID/mem by the same user.
func notDumpable() { _ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }
