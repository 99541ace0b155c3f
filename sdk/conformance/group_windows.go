package conformance

import "os/exec"

// ownGroup does nothing on Windows: the process alone is killed.
func ownGroup(*exec.Cmd) {}

// killGroup ends cmd's process.
func killGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }
