//go:build unix

package conformance

import (
	"os/exec"
	"syscall"
)

// ownGroup makes the plugin lead a process group of its own, so killing
// it also ends what it started (a wrapper script's interpreter), whose
// open stdout would otherwise keep go-plugin reading.
func ownGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// killGroup sends SIGKILL to the group cmd's process leads.
func killGroup(cmd *exec.Cmd) error {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return cmd.Process.Kill()
}

// terminateGroup sends SIGTERM to the group cmd's process leads.
func terminateGroup(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
}
