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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// exitWait is how long go-plugin waits, after asking a plugin to stop, for
// it to exit before it kills it.
const exitWait = 2 * time.Second

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
	if err := p.reach(rpc, o.callTimeout()); err != nil {
		client.Kill()
		return nil, err
	}
	return p, nil
}

// reach makes the first call, Info, on the raw connection, to tell a
// connection that fails (no TLS, the wrong certificate) from an answer.
func (p *Process) reach(rpc goplugin.ClientProtocol, timeout time.Duration) error {
	fields := strings.Split(strings.TrimSpace(p.Handshake), "|")
	if len(fields) < 6 || fields[5] == "" {
		return fmt.Errorf("the handshake line has no certificate (a 6th field): credhost talks to plugins over mutual TLS only. " +
			"Read the client's certificate (PEM) from $PLUGIN_CLIENT_CERT, make a certificate of your own, serve gRPC over TLS with it, " +
			"require and verify the client's, and print yours as the 6th field, base64 of its DER without padding")
	}
	gc, ok := rpc.(*goplugin.GRPCClient)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := pb.NewProviderClient(gc.Conn).Info(ctx, &pb.InfoRequest{})
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

// Close asks the plugin to stop as the host does (go-plugin's controller
// Shutdown, then the connection closed) and waits for it. The error says
// the plugin did not exit on its own within go-plugin's wait and was
// killed, or exited with a failure status.
func (p *Process) Close() error {
	start := time.Now()
	p.client.Kill()
	if p.run.wasKilled() {
		return fmt.Errorf("the plugin was still running %s after it was asked to stop (go-plugin's controller Shutdown, then the connection closed), and was killed: "+
			"serve the plugin.GRPCController service and exit on Shutdown", time.Since(start).Round(100*time.Millisecond))
	}
	if st := p.run.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("the plugin exited with %s when asked to stop; want status 0", st)
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
	cmd      *exec.Cmd
	stdout   io.ReadCloser
	stderr   io.ReadCloser
	first    firstLine
	startErr error

	mu     sync.Mutex
	killed bool // Kill was called before the process ended
	exited bool // the process ended
	closed bool // stdout ended before any Kill: the plugin exited by itself
}

var _ runner.Runner = (*process)(nil)

func newProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd}
	ownGroup(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	errR, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p.stdout = readCloser{eofReader{io.TeeReader(out, &p.first), p}, out}
	p.stderr = errR
	return p, nil
}

func (p *process) Start(context.Context) error {
	p.startErr = p.cmd.Start()
	return p.startErr
}

func (p *process) Wait(context.Context) error {
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exited = true
	p.mu.Unlock()
	return err
}

func (p *process) Kill(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited || p.cmd.Process == nil {
		return nil
	}
	p.killed = true
	return killGroup(p.cmd)
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
