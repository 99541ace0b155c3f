package host

import (
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

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

// startTiedToHost starts cmd so that the kernel kills it when the host
// dies, however it dies: a parent-death signal (SIGKILL). That reaches a
// plugin's child that is not itself a plugin (a wrapper script that runs
// the plugin without exec); the SDK in the plugin then sees its parent go
// and ends the rest of the group.
//
// The signal follows the thread that forked, not the process, and Go ends
// a thread when a goroutine locked to it returns; so the fork happens on a
// thread locked for as long as the plugin runs, released (not ended) when
// exited is closed.
func startTiedToHost(cmd *exec.Cmd, exited <-chan struct{}) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		errc <- err
		if err == nil {
			<-exited
		}
	}()
	return <-errc
}
