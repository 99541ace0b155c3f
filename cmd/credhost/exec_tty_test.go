//go:build linux

package main

import (
	"fmt"
	"github.com/credhost/credhost/host/hosttest"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestExecCtrlCFromTheTerminalReachesTheCommandOnce: in the foreground of a
// terminal, Ctrl-C reaches the command from the terminal itself; credhost
// must not pass on a second copy (Claude Code reads two as "quit now").
func TestExecCtrlCFromTheTerminalReachesTheCommandOnce(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
	master, slave := openPTY(t)
	go io.Copy(io.Discard, master)
	log, ready, stop := filepath.Join(s.home, "log"), filepath.Join(s.home, "ready"), filepath.Join(s.home, "stop")
	// However the test ends, the command's loop ends too: it traps the
	// signals that would otherwise stop it, and must not outlive the test.
	t.Cleanup(func() { os.WriteFile(stop, nil, 0o600) })
	startSignalsAtDefault()
	cmd := exec.Command(credhostBin, "exec", "--", "sh", "-c", trapScript, "sh", log, ready, stop)
	cmd.Env = s.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// credhost leads a session whose terminal is the pty: its group is
	// the foreground group, the command in it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := wait(t, cmd)
	hosttest.WaitFor(t, "the command to start", 10*time.Second, func() bool { return fileHasLine(ready) })
	for _, key := range []struct {
		name string
		b    byte
	}{{"INT", 3}, {"QUIT", 0x1c}} {
		if _, err := master.Write([]byte{key.b}); err != nil {
			t.Fatal(err)
		}
		hosttest.WaitFor(t, "SIG"+key.name+" from the terminal", 10*time.Second, func() bool { return countLines(log, key.name) > 0 })
	}
	time.Sleep(300 * time.Millisecond) // room for a second copy to arrive
	for _, name := range []string{"INT", "QUIT"} {
		if n := countLines(log, name); n != 1 {
			t.Errorf("the command got SIG%s from the terminal %d times; want once", name, n)
		}
	}
	os.WriteFile(stop, nil, 0o600)
	if err := done.exited(t, "after its command"); err != nil {
		t.Errorf("credhost exec: %v; want exit 0", err)
	}
}

func fileHasLine(path string) bool {
	data, err := os.ReadFile(path)
	return err == nil && len(data) > 0 && data[len(data)-1] == '\n'
}
