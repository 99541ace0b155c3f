package host

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// maxHandshakeLine caps the line a plugin prints before the handshake: a
// real handshake line (with its certificate) is under 2 KiB.
const maxHandshakeLine = 16 << 10

// handshakeLine is the shape of go-plugin's handshake line: core and app
// protocol versions, network, address, protocol, and optionally the
// server's certificate (base64) and multiplexing flag. Anything else a
// plugin prints on stdout is never passed on, so it can never be quoted.
// The address's bound (maxHandshakeAddr) is checked apart: a counted
// repetition such as {1,1000} compiles into a thousand copies, which cost
// every credhost start milliseconds in package init.
var handshakeLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[0-9]{1,4}\|[0-9]{1,4}\|(tcp|unix)\|([^|\x00-\x1f\x7f]+)\|(grpc|netrpc)(\|[A-Za-z0-9+/=]*)?(\|(true|false))?\r?\n?$`)
})

// maxHandshakeAddr bounds the address in a handshake line: a socket path
// or host:port is far shorter.
const maxHandshakeAddr = 1000

// pipeGrace is how long a plugin's stdout and stderr are read after it
// exited: enough for what it wrote last.
const pipeGrace = 200 * time.Millisecond

// isHandshake reports whether line is a well-formed handshake line.
func isHandshake(line []byte) bool {
	m := handshakeLine().FindSubmatchIndex(line)
	return m != nil && m[5]-m[4] <= maxHandshakeAddr
}

// pluginProcess runs one plugin as a go-plugin runner.Runner, so that the
// host, not go-plugin, decides how the process starts and ends:
//
//   - its environment is the minimal set plus what its config names;
//   - a pinned executable runs from the very bytes that were verified;
//   - it leads a process group of its own, and ending it ends the group, so
//     a wrapper script's children go too;
//   - its stdout is read here: only a well-formed handshake line reaches
//     go-plugin, anything else is counted, never shown; a handshake
//     without the TLS certificate credhost requires is refused with an
//     error that says so;
//   - its stderr is read here too (see relayStderr): go-plugin would drop
//     a plain line to debug and take hclog's JSON only with its exact
//     timestamp format; the last line is kept for the start error;
//   - it is ended as the host asks (see running.end): when the host ended
//     it, its exit status is no error.
type pluginProcess struct {
	name    string // the configured path, for messages
	cmd     *exec.Cmd
	logger  hclog.Logger
	exe     *executable // nil: the command runs by its path
	script  *executable // an interpreter's verified script; or nil
	sockets string      // go-plugin's socket directory for this plugin

	stdout    io.ReadCloser // what go-plugin reads: the handshake line only
	stderr    io.ReadCloser // what go-plugin reads: nothing (see relayStderr)
	rawStdout *os.File
	rawStderr *os.File
	junk      atomic.Int64 // bytes printed on stdout that were not a handshake
	rejected  atomic.Bool  // the first line was not a handshake
	closedOut atomic.Bool  // stdout ended before any line
	handshook atomic.Bool  // a handshake line was passed on
	ending    atomic.Bool  // the host is ending the process
	tail      stderrTail   // the last line on stderr

	exited chan struct{} // closed once the process is reaped
	// abort, once done, means the host no longer needs the process: one
	// started after is killed at once (see startProcess).
	abort context.Context

	mu           sync.Mutex
	pid          int
	reaped       bool
	done         bool  // cleanup ran
	exitErr      error // how the process ended, once reaped
	killed       bool  // the host killed it
	handshakeErr error // why the handshake line was refused
}

var _ runner.Runner = (*pluginProcess)(nil)

// newPluginProcess prepares cmd (not started) to run as a plugin, with env
// as its whole environment and exe, when set, as the verified executable.
func newPluginProcess(name string, cmd *exec.Cmd, env []string, exe *executable, logger hclog.Logger) (*pluginProcess, error) {
	p := &pluginProcess{name: name, cmd: cmd, logger: logger, exe: exe, exited: make(chan struct{})}
	cmd.Env = env
	cmd.Stdin = nil // the null device: a plugin must not read the user's terminal
	setProcessGroup(cmd)
	if exe != nil {
		exe.prepare(cmd)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	p.rawStdout, p.rawStderr = outR, errR
	return p, nil
}

// Start starts the process and the stdout filter.
func (p *pluginProcess) Start(context.Context) error {
	err := startTiedToHost(p.cmd, p.exited)
	// The child has its copies; the parent's write ends must go, or the
	// readers never see EOF.
	p.cmd.Stdout.(*os.File).Close()
	p.cmd.Stderr.(*os.File).Close()
	for _, e := range []*executable{p.exe, p.script} {
		if e != nil {
			e.started()
		}
	}
	if err != nil {
		p.rawStdout.Close()
		p.rawStderr.Close()
		return err
	}
	p.mu.Lock()
	p.pid = p.cmd.Process.Pid
	p.mu.Unlock()
	p.logger.Debug("plugin started", "path", p.name, "pid", p.pid)
	if p.abort != nil && p.abort.Err() != nil {
		p.ending.Store(true)
		p.Kill(context.Background())
	}
	// go-plugin reaps a plugin only once its stdout and stderr have ended;
	// a helper the plugin left in a session of its own (beyond its
	// group's kill) may hold them open for as long as it lives. Where the
	// system can wait for an exit without reaping, they end pipeGrace
	// after the plugin does, whoever still holds them.
	// Stderr is not closed but given a read deadline: closing it would
	// throw away what the plugin wrote last and the relay has not read
	// yet (its last line belongs in the start error); past the deadline
	// the relay takes what is already in the pipe, then stops.
	go func(pid int) {
		if waitExited(pid) {
			time.Sleep(pipeGrace)
			p.rawStdout.Close()
			if p.rawStderr.SetReadDeadline(time.Now()) != nil {
				p.rawStderr.Close()
			}
		}
	}(p.pid)
	r, w := io.Pipe()
	p.stdout = r
	go p.filterStdout(w)
	// go-plugin reads stderr until EOF before it waits for the process:
	// it gets EOF once every line has been logged here.
	er, ew := io.Pipe()
	p.stderr = er
	go func() {
		defer ew.Close()
		defer p.rawStderr.Close()
		relayStderr(&graceReader{f: p.rawStderr}, p.logger, &p.tail)
	}()
	return nil
}

// filterStdout passes the first line to go-plugin if it is a handshake
// line; otherwise it passes nothing (go-plugin then fails the start) and
// counts it. Everything after is counted and dropped.
func (p *pluginProcess) filterStdout(w *io.PipeWriter) {
	defer p.rawStdout.Close()
	br := bufio.NewReaderSize(p.rawStdout, maxHandshakeLine)
	line, err := br.ReadSlice('\n')
	if len(line) > 0 && isHandshake(line) {
		if herr := checkHandshake(line); herr != nil {
			p.mu.Lock()
			p.handshakeErr = herr
			p.mu.Unlock()
			p.rejected.Store(true)
		} else {
			p.handshook.Store(true)
			_, _ = w.Write(line)
		}
	} else {
		p.junk.Add(int64(len(line)))
		if len(line) > 0 || err == nil || errors.Is(err, bufio.ErrBufferFull) {
			p.rejected.Store(true)
		} else {
			p.closedOut.Store(true)
		}
	}
	// Keep the pipe open while the plugin runs: go-plugin reads it until
	// EOF, and an early EOF reads as "the plugin exited".
	if !p.rejected.Load() {
		n, _ := io.Copy(io.Discard, br)
		p.junk.Add(n)
		w.Close()
		return
	}
	w.Close()
	n, _ := io.Copy(io.Discard, br)
	p.junk.Add(n)
}

// stdoutError replaces go-plugin's start error when the plugin printed
// something other than a handshake: go-plugin's own message quotes it, and
// a plugin that prints a token by mistake must not publish it.
func (p *pluginProcess) stdoutError() error {
	if !p.rejected.Load() {
		return nil
	}
	p.mu.Lock()
	herr := p.handshakeErr
	p.mu.Unlock()
	if herr != nil {
		return fmt.Errorf("plugin %s: %w", p.name, herr)
	}
	return fmt.Errorf("plugin %s printed %d bytes on stdout instead of the plugin handshake (not shown: stdout carries only the handshake; a plugin logs to stderr)", p.name, p.junk.Load())
}

// Wait waits for the process to end, then ends what is left of its group.
func (p *pluginProcess) Wait(context.Context) error {
	var err error
	if waitExited(p.cmd.Process.Pid) {
		// The leader is a zombie, not yet reaped: its group ID cannot have
		// been reused, so killing the group hits only the plugin's own.
		p.mu.Lock()
		killGroup(p.cmd.Process)
		err = p.cmd.Wait()
		p.reaped = true
		p.mu.Unlock()
	} else {
		err = p.cmd.Wait()
		p.mu.Lock()
		p.reaped = true
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.exitErr = err
	p.mu.Unlock()
	close(p.exited)
	p.cleanup()
	if err != nil && (p.ending.Load() || !p.handshook.Load()) {
		// The host ended it (a signal, or an exit status a plugin gives
		// on SIGTERM): no error to report. Or it ended before its
		// handshake: the start error says how (see startError).
		p.logger.Debug("plugin ended", "path", p.name, "status", err.Error())
		return nil
	}
	return err
}

// terminate asks the plugin's process group to end (SIGTERM); where there
// is no such signal, it ends the process.
func (p *pluginProcess) terminate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid != 0 && !p.reaped {
		terminateGroup(p.cmd.Process)
	}
}

// startError says why the plugin did not start, in one line, when the
// process tells more than go-plugin's error (err): what it printed
// instead of a handshake, a handshake credhost refuses, its exit before
// the handshake or no handshake within timeout, each with the last line
// it wrote on stderr. nil: go-plugin's error says it.
func (p *pluginProcess) startError(timeout time.Duration) error {
	if err := p.stdoutError(); err != nil {
		return err
	}
	if p.handshook.Load() {
		return nil
	}
	if p.closedOut.Load() {
		// stdout ended: the process is ending, if not yet reaped.
		select {
		case <-p.exited:
		case <-time.After(exitGrace):
		}
	}
	var msg string
	status, exited := p.exitStatus()
	switch {
	case exited:
		msg = fmt.Sprintf("plugin %s exited before the plugin handshake (%s)", p.name, status)
	case p.closedOut.Load():
		msg = fmt.Sprintf("plugin %s closed its stdout without the plugin handshake", p.name)
	default:
		msg = fmt.Sprintf("plugin %s printed no plugin handshake within plugins.start_timeout (%s)", p.name, timeout)
	}
	if last := p.tail.String(); last != "" {
		msg += "; the last line it wrote on stderr: " + last
	}
	return errors.New(msg)
}

// exitStatus says how the process ended, and whether it ended by itself:
// not when the host (go-plugin, on a failed start) killed it.
func (p *pluginProcess) exitStatus() (string, bool) {
	select {
	case <-p.exited:
	default:
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exitErr == nil {
		return "exit status 0", true
	}
	var ee *exec.ExitError
	if p.killed && (!errors.As(p.exitErr, &ee) || ee.ExitCode() < 0 || runtime.GOOS == "windows") {
		return "", false
	}
	return p.exitErr.Error(), true
}

// checkHandshake refuses a handshake line credhost cannot use, saying
// why: the 6th field must be the plugin's TLS certificate (credhost
// requires mutual TLS; go-plugin would connect in plain text and fail at
// the first call), as unpadded base64 of its DER bytes.
func checkHandshake(line []byte) error {
	fields := strings.Split(strings.TrimRight(string(line), "\r\n"), "|")
	if fields[0] != "1" {
		return fmt.Errorf("handshake field 1 (core protocol version) is %q; want 1", fields[0])
	}
	if fields[4] != "grpc" {
		return fmt.Errorf("handshake field 5 (protocol) is %q; credhost speaks grpc only", fields[4])
	}
	if len(fields) < 6 || fields[5] == "" {
		return errors.New("the handshake has no TLS certificate (field 6): credhost requires mutual TLS; the plugin must read PLUGIN_CLIENT_CERT, serve TLS with a certificate of its own and print that certificate, base64 without padding, as field 6 (see sdk/proto/PROTOCOL.md)")
	}
	if strings.Contains(fields[5], "=") {
		return errors.New("the TLS certificate in the handshake (field 6) is base64 with = padding; it must be base64 without padding")
	}
	der, err := base64.RawStdEncoding.DecodeString(fields[5])
	if err != nil {
		return fmt.Errorf("the TLS certificate in the handshake (field 6) is not base64 without padding: %w", err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return fmt.Errorf("the handshake's field 6 is not a DER certificate: %w", err)
	}
	return nil
}

// Kill ends the plugin's whole process group.
func (p *pluginProcess) Kill(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid != 0 && !p.reaped {
		p.killed = true
		killGroup(p.cmd.Process)
	}
	return nil
}

// cleanup removes the private copy of a verified executable, if any, and
// the socket directory; call it once the process has ended.
func (p *pluginProcess) cleanup() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	for _, e := range []*executable{p.exe, p.script} {
		if e != nil {
			e.remove()
		}
	}
	// go-plugin removes it only for a plugin that got a process ID.
	if p.sockets != "" {
		_ = os.RemoveAll(p.sockets)
	}
}

// Stdout is what go-plugin reads the handshake from.
func (p *pluginProcess) Stdout() io.ReadCloser { return p.stdout }

// Stderr carries the plugin's log lines.
func (p *pluginProcess) Stderr() io.ReadCloser { return p.stderr }

// Name is the configured path.
func (p *pluginProcess) Name() string { return p.name }

// ID is the process ID, "" before the start.
func (p *pluginProcess) ID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == 0 {
		return ""
	}
	return strconv.Itoa(p.pid)
}

// Diagnose adds nothing: the start error says what went wrong.
func (p *pluginProcess) Diagnose(context.Context) string { return "" }

// PluginToHost: the plugin runs beside the host, addresses are the same.
func (p *pluginProcess) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

// HostToPlugin: the plugin runs beside the host, addresses are the same.
func (p *pluginProcess) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// maxDrainedStderr bounds what is read from a plugin's stderr once
// pipeGrace is over: what the plugin wrote before it exited fits in a
// pipe's buffer, while a helper still holding the pipe may write forever.
const maxDrainedStderr = 1 << 20

// testHookStderrReadDelay, when set (tests only), delays the stderr
// relay's first read, so a plugin can exit and pipeGrace pass while its
// last line is still unread in the pipe.
var testHookStderrReadDelay atomic.Int64

// graceReader reads a plugin's stderr until it ends or, once its read
// deadline has passed (pipeGrace after the plugin exited), until what is
// already in the pipe has been read: bytes the plugin wrote before it
// exited are never lost, and a helper holding the pipe cannot keep the
// relay reading.
type graceReader struct {
	f       *os.File
	started bool
	drained int // bytes read past the deadline
}

// Read implements io.Reader.
func (g *graceReader) Read(b []byte) (int, error) {
	if !g.started {
		g.started = true
		if d := testHookStderrReadDelay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
	}
	n, err := g.f.Read(b)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}
	if g.drained >= maxDrainedStderr {
		return 0, io.EOF
	}
	if len(b) > maxDrainedStderr-g.drained {
		b = b[:maxDrainedStderr-g.drained]
	}
	n, err = readBuffered(g.f, b)
	g.drained += n
	return n, err
}
