//go:build unix

package host

import (
	"io"
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup makes the plugin lead a process group of its own, so
// ending the group ends whatever it started (a wrapper script's
// interpreter, a helper it spawned).
func setProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// killGroup sends SIGKILL to the process group p leads.
func killGroup(p *os.Process) {
	if p == nil || p.Pid <= 0 {
		return
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = p.Kill()
}

// terminateGroup sends SIGTERM to the process group p leads.
func terminateGroup(p *os.Process) {
	if p == nil || p.Pid <= 0 {
		return
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
}

// readBuffered reads into b what f's pipe already holds, without waiting:
// io.EOF when it holds nothing. f must be non-blocking (a pipe from
// os.Pipe given a read deadline is).
func readBuffered(f *os.File, b []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			n, rerr = syscall.Read(int(fd), b)
			if rerr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	if n <= 0 || rerr != nil {
		// Nothing buffered (EAGAIN), the end of the pipe, or an error:
		// either way, nothing more that was there when the plugin exited.
		return 0, io.EOF
	}
	return n, nil
}
