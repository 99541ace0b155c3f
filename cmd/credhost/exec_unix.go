//go:build unix

package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwardedSignals are the signals a terminal or a supervisor sends that
// `credhost exec` passes on to its command.
var forwardedSignals = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// terminalSignals are the ones a terminal sends to its whole foreground
// process group (Ctrl-C, Ctrl-\, a resize).
var terminalSignals = map[os.Signal]bool{syscall.SIGINT: true, syscall.SIGQUIT: true, syscall.SIGWINCH: true}

// forwarder passes signals sent to credhost on to the command, each once.
//
// The command runs in credhost's process group, so what the terminal sends
// to the foreground group (INT, QUIT, WINCH) reaches it directly; passing
// such a signal on too would deliver it twice, which Claude Code reads as
// "quit now". Go does not tell a handler who sent a signal, so credhost
// decides by where it stands: a terminal signal is passed on unless
// credhost's group is its terminal's foreground group and the command is
// still in it. The trade-off: `kill -INT` aimed at credhost alone while it
// runs in the foreground of a terminal does not reach the command (send it
// to the command, or to the group). Everything else is passed on always; a
// supervisor that signals the whole group (not just credhost) then delivers
// it twice.
type forwarder struct {
	ignored  map[os.Signal]bool // ignored when credhost started: left so
	ch       chan os.Signal
	once     sync.Once
	stopOnce sync.Once
	done     chan struct{}
}

// newForwarder records which signals credhost was started with ignored
// (nohup ignores HUP; a shell's background job, INT): those stay ignored,
// and the command inherits that. Call it before any signal.Notify.
func newForwarder() *forwarder {
	f := &forwarder{ignored: map[os.Signal]bool{}, ch: make(chan os.Signal, 16), done: make(chan struct{})}
	for _, s := range forwardedSignals {
		if signal.Ignored(s) {
			f.ignored[s] = true
		}
	}
	return f
}

// listen starts catching the signals (queued until start), so none of them
// ends credhost and leaves the command behind.
func (f *forwarder) listen() {
	f.once.Do(func() {
		var catch []os.Signal
		for _, s := range forwardedSignals {
			if f.ignored[s] {
				signal.Ignore(s) // undo any handler installed since
				continue
			}
			catch = append(catch, s)
		}
		signal.Notify(f.ch, catch...)
	})
}

// start passes the caught signals on to p until stop.
func (f *forwarder) start(p *os.Process) {
	go func() {
		for {
			select {
			case <-f.done:
				return
			case s := <-f.ch:
				if terminalSignals[s] && terminalDelivered(p.Pid) {
					continue
				}
				_ = p.Signal(s)
			}
		}
	}()
}

// stop ends forwarding. Signals still arrive at credhost's handler, so a
// late one does not kill it while it reports the command's status.
func (f *forwarder) stop() {
	f.stopOnce.Do(func() { close(f.done) })
}

// terminalDelivered reports whether the terminal delivers its signals to
// the command itself: credhost's process group is the foreground group of
// its controlling terminal, and the command is in that group.
func terminalDelivered(pid int) bool {
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false // no controlling terminal
	}
	defer unix.Close(fd)
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil {
		return false
	}
	own := unix.Getpgrp()
	if fg != own {
		return false
	}
	child, err := unix.Getpgid(pid)
	return err == nil && child == own
}

// exitStatus is the command's exit code, or 128+N when signal N killed it
// (what a shell reports).
func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
