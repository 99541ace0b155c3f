package conformance

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/credhost/credhost/sdk"
	pb "github.com/credhost/credhost/sdk/internal/credhostpb"
	"github.com/credhost/credhost/sdk/plugin"
)

// Defaults for Options. The start bound is the host's default
// plugins.start_timeout; a call gets more than the host's call_timeout,
// since the checks run under -race and on loaded machines.
const (
	DefaultStartTimeout = 10 * time.Second
	DefaultCallTimeout  = 10 * time.Second
)

// How long a plugin has to exit once asked, as the host allows it: after
// the controller's Shutdown (go-plugin's own wait), and after SIGTERM for a
// plugin that serves no controller.
const (
	exitWait = 2 * time.Second
	termWait = 500 * time.Millisecond
)

// controllerShutdown is go-plugin's controller service, which a plugin
// built with go-plugin serves and one in another language may leave out.
const controllerShutdown = "/plugin.GRPCController/Shutdown"

// Options say how Start runs a plugin.
type Options struct {
	// StartTimeout bounds the start and handshake; 0 is DefaultStartTimeout.
	StartTimeout time.Duration
	// CallTimeout bounds each call a check makes; 0 is DefaultCallTimeout.
	CallTimeout time.Duration
	// Logger receives go-plugin's lines and the plugin's stderr; nil
	// discards them (the tail of stderr still explains a failed start).
	Logger hclog.Logger
}

func (o Options) startTimeout() time.Duration {
	if o.StartTimeout > 0 {
		return o.StartTimeout
	}
	return DefaultStartTimeout
}

func (o Options) callTimeout() time.Duration {
	if o.CallTimeout > 0 {
		return o.CallTimeout
	}
	return DefaultCallTimeout
}

// Process is a plugin started by Start.
type Process struct {
	// Provider calls the plugin across the process boundary.
	Provider sdk.Provider
	// Handshake is the line the plugin printed on stdout.
	Handshake string

	client *goplugin.Client
	conn   *grpc.ClientConn // nil if go-plugin's client is not gRPC
	run    *process
}

// Start runs cmd as a plugin process (its Env, nil meaning this process's
// environment, plus go-plugin's variables: the magic cookie, the client
// certificate) with the host's client setup, and makes a first call across
// the connection, so a plugin that started but cannot be reached fails here.
// The error explains what the plugin got wrong, with the tail of its
// stderr, rather than go-plugin's or gRPC's words. Close the Process when
// done.
func Start(cmd *exec.Cmd, o Options) (*Process, error) {
	logger := o.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cc := plugin.ClientConfig(logger)
	// The host's mutual TLS (one P-256 identity of its own), so a plugin
	// passes here exactly when it takes the host's certificate.
	id, err := plugin.NewClientTLS()
	if err != nil {
		return nil, err
	}
	certEnv := id.Apply(cc)
	cc.StartTimeout = o.startTimeout()
	cc.SkipHostEnv = true
	stderr := &tail{max: 2048}
	cc.Stderr = stderr
	var proc *process
	cc.RunnerFunc = func(_ hclog.Logger, gp *exec.Cmd, _ string) (runner.Runner, error) {
		c := exec.Command(cmd.Path)
		c.Args, c.Dir = cmd.Args, cmd.Dir
		base := cmd.Env
		if base == nil {
			base = os.Environ()
		}
		c.Env = append(slices.Clone(base), gp.Env...)
		c.Env = append(c.Env, certEnv)
		var err error
		proc, err = newProcess(c)
		return proc, err
	}
	client := goplugin.NewClient(cc)
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, explainStart(err, proc, stderr.String(), o)
	}
	prov, err := plugin.Dispense(rpc)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispense the provider: %w", err)
	}
	p := &Process{Provider: prov, Handshake: proc.first.String(), client: client, run: proc}
	if gc, ok := rpc.(*goplugin.GRPCClient); ok {
		p.conn = gc.Conn
	}
	if err := p.reach(o.callTimeout()); err != nil {
		client.Kill()
		return nil, err
	}
	return p, nil
}

// reach makes the first call, Info, on the raw connection, to tell a
// connection that fails (no TLS, the wrong certificate) from an answer.
func (p *Process) reach(timeout time.Duration) error {
	fields := strings.Split(strings.TrimSpace(p.Handshake), "|")
	if len(fields) < 6 || fields[5] == "" {
		return fmt.Errorf("the handshake line has no certificate (a 6th field): credhost talks to plugins over mutual TLS only. " +
			"Read the client's certificate (PEM) from $PLUGIN_CLIENT_CERT, make a certificate of your own, serve gRPC over TLS with it, " +
			"require and verify the client's, and print yours as the 6th field, base64 of its DER without padding")
	}
	if p.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := pb.NewProviderClient(p.conn).Info(ctx, &pb.InfoRequest{})
	switch status.Code(err) {
	case codes.Unavailable:
		return fmt.Errorf("the handshake line was read, but the first call (Info) could not reach the plugin: %s. "+
			"The plugin must serve gRPC over TLS at the address it printed, with the certificate it printed, requiring the client's certificate from $PLUGIN_CLIENT_CERT",
			plugin.Text(status.Convert(err).Message()))
	case codes.DeadlineExceeded:
		return fmt.Errorf("the first call (Info) got no answer within %s", timeout)
	}
	return nil
}

// Close ends the plugin as the host does and says whether it exited as
// the protocol asks: the host calls go-plugin's controller service
// (/plugin.GRPCController/Shutdown), after which the plugin exits within
// 2 s with status 0; a plugin that does not serve the controller gets
// SIGTERM, and must be gone within half a second. A plugin still running
// after that is killed, and the error says so.
func (p *Process) Close() error {
	defer p.client.Kill()
	if p.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := p.conn.Invoke(ctx, controllerShutdown, &emptypb.Empty{}, &emptypb.Empty{})
	cancel()
	how, grace := "after Shutdown", exitWait
	switch status.Code(err) {
	case codes.OK:
	case codes.Unimplemented:
		how, grace = "after SIGTERM (it serves no controller, so the host ends it so)", termWait
		p.run.terminate()
	default:
		how = "after a Shutdown that failed (" + plugin.Text(status.Convert(err).Message()) + ")"
	}
	select {
	case <-p.run.exited:
	case <-time.After(grace):
		p.run.Kill(context.Background())
		return fmt.Errorf("the plugin was still running %s %s, and was killed: exit within 2 s of Shutdown, or on SIGTERM when you serve no controller", grace, how)
	}
	if st := p.run.cmd.ProcessState; how == "after Shutdown" && st != nil && !st.Success() {
		return fmt.Errorf("the plugin ended with %s after Shutdown; want exit status 0", st)
	}
	return nil
}

// explainStart says why a plugin did not start, from what it printed and
// whether it exited, rather than go-plugin's words for it.
func explainStart(err error, proc *process, stderr string, o Options) error {
	cookie := plugin.Handshake.MagicCookieKey + "=" + plugin.Handshake.MagicCookieValue
	if proc == nil {
		return fmt.Errorf("start: %w", err)
	}
	said := ""
	if s := strings.TrimSpace(plugin.Text(stderr)); s != "" {
		said = "; its stderr ended: " + strconv.Quote(s)
	}
	line := proc.first.String()
	if strings.TrimSpace(line) == "" {
		if exited, st := proc.exitedByItself(); exited {
			return fmt.Errorf("the plugin exited (%s) before printing its handshake line: "+
				"a plugin that does not find the magic cookie %s in its environment exits at once, and so does one that crashes at start%s",
				st, cookie, said)
		}
		if proc.startErr != nil {
			return fmt.Errorf("the plugin could not be run: %w", proc.startErr)
		}
		return fmt.Errorf("the plugin printed no handshake line within %s and was killed: "+
			"it must print CORE|APP|NETWORK|ADDRESS|grpc|CERT on stdout once it listens (a wrapper script must exec its interpreter)%s",
			o.startTimeout(), said)
	}
	if msg := checkHandshake(line); msg != "" {
		return fmt.Errorf("the handshake line is wrong: %s%s", msg, said)
	}
	return fmt.Errorf("start: %s%s", plugin.Text(err.Error()), said)
}

// checkHandshake says what is wrong with a plugin's handshake line, or "".
// The line is not quoted: stdout may carry anything a plugin printed.
func checkHandshake(line string) string {
	f := strings.Split(strings.TrimSpace(line), "|")
	if len(f) < 5 {
		return fmt.Sprintf("it has %d |-separated fields; want CORE|APP|NETWORK|ADDRESS|grpc and the certificate (6 fields)", len(f))
	}
	if f[0] != strconv.Itoa(goplugin.CoreProtocolVersion) {
		return fmt.Sprintf("core protocol %q; want %d (go-plugin's)", plugin.Text(f[0]), goplugin.CoreProtocolVersion)
	}
	if f[1] != strconv.Itoa(int(plugin.Handshake.ProtocolVersion)) {
		return fmt.Sprintf("protocol version %q; credhost speaks %d (it lists what it speaks in $PLUGIN_PROTOCOL_VERSIONS)", plugin.Text(f[1]), plugin.Handshake.ProtocolVersion)
	}
	if f[2] != "unix" && f[2] != "tcp" {
		return fmt.Sprintf("network %q; want unix or tcp", plugin.Text(f[2]))
	}
	if f[4] != string(goplugin.ProtocolGRPC) {
		return fmt.Sprintf("protocol %q; credhost speaks grpc only", plugin.Text(f[4]))
	}
	if len(f) >= 6 {
		cert := f[5]
		if strings.Contains(cert, "=") {
			return "the certificate (6th field) is padded base64 ('=' at its end): write it without padding (base64 RawStdEncoding), or it fails whenever its length is not a multiple of 3"
		}
		der, err := base64.RawStdEncoding.DecodeString(cert)
		if err != nil {
			return "the certificate (6th field) is not base64 (standard alphabet, no padding) of a DER certificate"
		}
		if _, err := x509.ParseCertificate(der); err != nil {
			return "the certificate (6th field) is not a DER-encoded X.509 certificate: " + err.Error()
		}
	}
	return ""
}

// process runs one plugin for go-plugin (a runner.Runner), recording what
// a failed start needs explained: the first line on stdout, whether the
// plugin exited by itself or was killed.
type process struct {
	cmd        *exec.Cmd
	stdout     io.ReadCloser
	stderr     io.ReadCloser
	outR, errR *os.File // the read ends of the plugin's stdout and stderr
	first      firstLine
	startErr   error
	waitErr    error         // how the process ended, once exited is closed
	exited     chan struct{} // closed once the process is reaped

	mu     sync.Mutex
	killed bool // Kill was called before the process ended
	ended  bool // the process was reaped
	closed bool // stdout ended before any Kill: the plugin exited by itself
}

var _ runner.Runner = (*process)(nil)

// pipeGrace is how long the plugin's stdout and stderr are read after it
// exited: enough for what it wrote last, and no more, since a helper it
// left in a session of its own (beyond the kill of its process group)
// may hold them open for as long as it lives, and go-plugin waits for
// both to end before it reaps the plugin.
const pipeGrace = 200 * time.Millisecond

// newProcess prepares cmd with pipes of its own for stdout and stderr
// (not exec's, which Wait closes and whose end go-plugin waits for).
func newProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, exited: make(chan struct{})}
	ownGroup(cmd)
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
	p.outR, p.errR = outR, errR
	p.stdout = readCloser{eofReader{io.TeeReader(outR, &p.first), p}, outR}
	p.stderr = errR
	return p, nil
}

// Start starts the plugin and reaps it as soon as it exits; its stdout
// and stderr end pipeGrace later, whoever still holds them.
func (p *process) Start(context.Context) error {
	p.startErr = p.cmd.Start()
	// The child has its copies.
	p.cmd.Stdout.(*os.File).Close()
	p.cmd.Stderr.(*os.File).Close()
	if p.startErr != nil {
		p.outR.Close()
		p.errR.Close()
		return p.startErr
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.ended, p.waitErr = true, err
		p.mu.Unlock()
		close(p.exited)
		time.Sleep(pipeGrace)
		p.outR.Close()
		p.errR.Close()
	}()
	return nil
}

// Wait returns once the plugin has been reaped, with how it ended.
func (p *process) Wait(context.Context) error {
	<-p.exited
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

func (p *process) Kill(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended || p.cmd.Process == nil {
		return nil
	}
	p.killed = true
	return killGroup(p.cmd)
}

// terminate asks the plugin's process group to end (SIGTERM; on Windows
// the process is ended).
func (p *process) terminate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ended && p.cmd.Process != nil {
		_ = terminateGroup(p.cmd)
	}
}

// wasKilled reports that Kill ended the process.
func (p *process) wasKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

// exitedByItself reports that the plugin closed its stdout (it exited)
// before any Kill, and how it ended. Call it once go-plugin is done with
// the process (Client.Kill returned).
func (p *process) exitedByItself() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		return false, ""
	}
	if p.cmd.ProcessState == nil {
		return true, "status unknown"
	}
	return true, p.cmd.ProcessState.String()
}

// eofReader notes when the plugin's stdout ends before any Kill.
type eofReader struct {
	r io.Reader
	p *process
}

func (e eofReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil {
		e.p.mu.Lock()
		if !e.p.killed {
			e.p.closed = true
		}
		e.p.mu.Unlock()
	}
	return n, err
}

func (p *process) Stdout() io.ReadCloser                            { return p.stdout }
func (p *process) Stderr() io.ReadCloser                            { return p.stderr }
func (p *process) Name() string                                     { return p.cmd.Path }
func (p *process) Diagnose(context.Context) string                  { return "" }
func (p *process) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (p *process) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

func (p *process) ID() string {
	if p.cmd.Process == nil {
		return ""
	}
	return strconv.Itoa(p.cmd.Process.Pid)
}

type readCloser struct {
	io.Reader
	io.Closer
}

// firstLine keeps the first line written to it (up to 16 KiB).
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	done bool
}

func (f *firstLine) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			f.buf, f.done = append(f.buf, b[:i]...), true
		} else {
			f.buf = append(f.buf, b...)
		}
		if len(f.buf) > 16<<10 {
			f.buf, f.done = f.buf[:16<<10], true
		}
	}
	return len(b), nil
}

func (f *firstLine) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.buf)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
