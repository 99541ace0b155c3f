package host

import "golang.org/x/sys/unix"

// waitExited blocks until process pid has exited, without reaping it (so
// its ID, and its group's, cannot be reused yet). It reports false when it
// could not wait.
func waitExited(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		return err == nil
	}
}
