package conformance

import "os/exec"

// ownGroup does nothing on Windows: the process alone is killed.
func ownGroup(*exec.Cmd) {}

// killGroup ends cmd's process.
func killGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }

// terminateGroup ends cmd's process: Windows has no SIGTERM.
func terminateGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }
