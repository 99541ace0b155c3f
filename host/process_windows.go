package host

import (
	"io"
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

// readBuffered is never needed here: without waitExited, no read deadline
// is set on a plugin's stderr.
func readBuffered(*os.File, []byte) (int, error) { return 0, io.EOF }
