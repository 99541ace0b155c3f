//go:build !linux

package host

import "os/exec"

// startTiedToHost starts cmd; only Linux has a parent-death signal, so
// here a plugin built with the SDK ends itself (and its group) when it
// sees its host go.
func startTiedToHost(cmd *exec.Cmd, _ <-chan struct{}) error { return cmd.Start() }
