package host

import (
	"os"
	"os/exec"
)

// setProcessGroup does nothing on Windows: there are no process groups to
// signal; the plugin process itself is ended.
func setProcessGroup(*exec.Cmd) {}

// killGroup ends the plugin process.
func killGroup(p *os.Process) {
	if p != nil {
		_ = p.Kill()
	}
}

// waitExited cannot wait without reaping on Windows.
func waitExited(int) bool { return false }

// terminateGroup ends the plugin process: Windows has no SIGTERM.
func terminateGroup(p *os.Process) { killGroup(p) }
