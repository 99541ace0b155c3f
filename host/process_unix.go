//go:build unix

package host

import (
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
