//go:build unix

package main

import (
	"errors"
	"github.com/credhost/credhost/host/hosttest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startSignalsAtDefault makes every credhost this test binary starts from
// now on begin with the forwarded signals at their default action, however
// the binary itself was started. credhost exec leaves a signal it was
// started with ignored (nohup's HUP, a script's background job's INT)
// ignored, by design, and its command inherits that: run under nohup, the
// tests below would see no HUP reach the command. A signal ignored here
// gets a handler instead, which exec(2) resets to the default in each
// child. The tests that send signals call it before they start credhost.
var startSignalsAtDefault = sync.OnceFunc(func() {
	var ignored []os.Signal
	for _, s := range forwardedSignals {
		if signal.Ignored(s) {
			ignored = append(ignored, s)
		}
	}
	if len(ignored) > 0 {
		signal.Notify(make(chan os.Signal, 1), ignored...)
	}
})

// trapScript records every forwarded signal it receives, one name a line,
// in $1; touches $2 when its traps are set; writes its pid to $2 too; and
// runs until $3 exists.
const trapScript = `log=$1
for s in HUP INT TERM QUIT USR1 USR2 WINCH; do trap "echo $s >> '$log'" $s; done
echo $$ > "$2"
while [ ! -e "$3" ]; do sleep 0.02; done`

// startExec starts `credhost exec -- sh -c script sh ARGS...` in a session
// of its own (no controlling terminal: a signal it gets was sent to it
// alone, as a supervisor does) and waits for the script's ready file.
func startExec(t *testing.T, s *sandbox, script string, args ...string) (*exec.Cmd, *waiter, int) {
	t.Helper()
	startSignalsAtDefault()
	ready := filepath.Join(s.home, "ready")
	argv := append([]string{"exec", "--", "sh", "-c", script, "sh"}, args...)
	cmd := exec.Command(credhostBin, argv...)
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := wait(t, cmd)
	var pid int
	hosttest.WaitFor(t, "the command to start", 10*time.Second, func() bool {
		data, err := os.ReadFile(ready)
		if err != nil || !strings.HasSuffix(string(data), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil
	})
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	return cmd, w, pid
}

// waiter is a started command's end.
type waiter struct {
	done chan struct{}
	err  error
}

// wait waits for cmd in the background; the test's end kills it.
func wait(t *testing.T, cmd *exec.Cmd) *waiter {
	w := &waiter{done: make(chan struct{})}
	go func() {
		w.err = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-w.done
	})
	return w
}

// exited waits (generously) for the command's end and returns its error.
func (w *waiter) exited(t *testing.T, what string) error {
	t.Helper()
	select {
	case <-w.done:
		return w.err
	case <-time.After(10 * time.Second):
		t.Fatalf("credhost did not exit %s", what)
		return nil
	}
}

func countLines(path, line string) int {
	data, _ := os.ReadFile(path)
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if l == line {
			n++
		}
	}
	return n
}

// TestExecForwardsEachSignalOnce: every signal a terminal or supervisor
// sends, sent to credhost alone, reaches the command exactly once, and
// none of them ends credhost.
func TestExecForwardsEachSignalOnce(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
	log, ready, stop := filepath.Join(s.home, "log"), filepath.Join(s.home, "ready"), filepath.Join(s.home, "stop")
	// However the test ends, the command's loop ends too: it traps the
	// signals that would otherwise stop it, and must not outlive the test.
	t.Cleanup(func() { os.WriteFile(stop, nil, 0o600) })
	cmd, done, _ := startExec(t, s, trapScript, log, ready, stop)
	signals := map[string]syscall.Signal{
		"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "QUIT": syscall.SIGQUIT,
		"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH,
	}
	for _, name := range []string{"HUP", "INT", "TERM", "QUIT", "USR1", "USR2", "WINCH"} {
		if err := cmd.Process.Signal(signals[name]); err != nil {
			t.Fatalf("signal %s to credhost: %v (did an earlier one end it?)", name, err)
		}
		hosttest.WaitFor(t, "SIG"+name+" to reach the command", 10*time.Second, func() bool { return countLines(log, name) > 0 })
	}
	time.Sleep(300 * time.Millisecond) // room for a second copy to arrive
	for name := range signals {
		if n := countLines(log, name); n != 1 {
			t.Errorf("the command got SIG%s %d times; want once", name, n)
		}
	}
	os.WriteFile(stop, nil, 0o600)
	if err := done.exited(t, "after its command"); err != nil {
		t.Errorf("credhost exec: %v; want exit 0, the command's status", err)
	}
}

// TestExecHangupDoesNotOrphanTheCommand: a SIGHUP (the terminal went away)
// is passed on and credhost stays until the command is gone, instead of
// dying and leaving it, token and all, under PID 1.
func TestExecHangupDoesNotOrphanTheCommand(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
	ready, stop := filepath.Join(s.home, "ready"), filepath.Join(s.home, "stop")
	// However the test ends, the command's loop ends too: it traps the
	// signals that would otherwise stop it, and must not outlive the test.
	t.Cleanup(func() { os.WriteFile(stop, nil, 0o600) })
	// No trap: a hangup ends the command, as it ends most programs.
	cmd, done, pid := startExec(t, s, `echo $$ > "$1"; while [ ! -e "$2" ]; do sleep 0.02; done`, ready, stop)
	cmd.Process.Signal(syscall.SIGHUP)
	var ee *exec.ExitError
	if err := done.exited(t, "after SIGHUP"); !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGHUP) {
		t.Errorf("credhost exec after SIGHUP: %v; want exit 129 (the command died of SIGHUP)", err)
	}
	hosttest.WaitFor(t, "the command to be gone", 10*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
}

// TestExecExitsWith128PlusTheCommandsSignal: a command killed by signal N
// makes credhost exit 128+N, as a shell reports it.
func TestExecExitsWith128PlusTheCommandsSignal(t *testing.T) {
	t.Parallel()
	for name, sig := range map[string]syscall.Signal{"TERM": syscall.SIGTERM, "KILL": syscall.SIGKILL, "INT": syscall.SIGINT} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
			r := s.run("exec", "--", "sh", "-c", "kill -"+name+" $$; sleep 5")
			if want := 128 + int(sig); r.code != want {
				t.Errorf("exit %d; want %d (the command died of SIG%s)\n%s", r.code, want, name, r.stderr)
			}
		})
	}
}
