package host

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/credhost/credhost/sdk"
	sdkplugin "github.com/credhost/credhost/sdk/plugin"
)

// Builtin is a provider compiled into the program that embeds the host. The
// host never imports plugins/: the program (cmd/credhost) hands them in with
// WithBuiltins.
type Builtin struct {
	// New returns a fresh, unconfigured provider, for in-process mode.
	New func() sdk.Provider
	// Command returns the command that serves the provider as a plugin
	// process (for credhost: its own binary with `plugin serve NAME`).
	Command func() *exec.Cmd
	// Env, when set, names the environment variables the provider reads
	// given its config block (the env provider: the variable its `var`
	// names). As a plugin process it gets these besides the base set and
	// the provider's `env:` list; its environment is fixed before
	// Configure, so the program that knows the provider says them here.
	Env func(config map[string]any) []string
}

// member is one provider of the chain: its config, and the provider itself,
// started and configured on first use so a chain that stops early never
// keeps the providers after the winner (a plugin process started ahead of
// the walk and not needed is ended).
type member struct {
	cfg         ProviderConfig
	oauth       sdk.OAuthConfig
	start       func(abort context.Context) (sdk.Provider, *running, error)
	logger      hclog.Logger
	callTimeout time.Duration // bounds Configure and Info, not the start
	// unexpand makes start and configure errors, which may quote the
	// config, read as the config file does, not as ${VAR} expanded.
	unexpand unexpander

	// process: the provider runs as a plugin process, so the walk may
	// start it ahead (see startAhead); begun: its start is done.
	process bool
	begun   atomic.Bool
	claimed atomic.Bool // a walk is starting it ahead

	once   sync.Once
	prov   sdk.Provider
	client *running // nil: in-process
	err    error
	info   sdk.Info
	// infoErr is why Info failed: the store's locks are unknown, so it is
	// not refreshed (see refreshLocked).
	infoErr error

	mu      sync.Mutex // guards retryAt, rejectedHash, and client against a concurrent close
	retryAt time.Time  // no refresh before this (the endpoint's Retry-After)
	// rejectedHash is the SHA-256 of the refresh token the endpoint
	// rejected while the store held it (see rejected.go); "" for none.
	rejectedHash string
}

// provider returns the started, configured provider, or the error that
// stopped it; the first call starts it. The start is bounded by
// plugins.start_timeout, Configure and Info each by the call timeout. The
// outcome is kept for every later call, so it must not depend on the first
// caller's context: a caller that gave up must not leave the provider
// unconfigured (or without its Info: no refresh, no lock) for good.
func (m *member) provider(ctx context.Context) (sdk.Provider, error) {
	m.once.Do(func() { m.adopt(m.open(ctx, context.Background())) })
	return m.prov, m.err
}

// opened is the outcome of starting and configuring a member's provider,
// not yet handed to the member (see prestart).
type opened struct {
	prov    sdk.Provider
	client  *running
	err     error
	info    sdk.Info
	infoErr error // why Info failed, as the member keeps it
	infoLog error // the same, as Info returned it, for the log
}

// open starts the member's provider and configures it, as provider
// describes, without touching the member: a start begun ahead of the walk
// may be discarded, and abort, once done, kills its process (mid-handshake
// too) and skips the configuration.
func (m *member) open(ctx, abort context.Context) opened {
	ctx = context.WithoutCancel(ctx)
	prov, client, err := m.start(abort)
	if err != nil {
		return opened{err: providerErr(m, "start", m.unexpand.applyErr(err))}
	}
	o := opened{prov: prov, client: client}
	if abort.Err() != nil {
		o.err = providerErr(m, "start", abort.Err())
		return o
	}
	raw, err := json.Marshal(m.cfg.Config)
	if err != nil {
		o.err = providerErr(m, "configure", err)
		return o
	}
	if m.cfg.Config == nil {
		raw = []byte("{}")
	}
	cctx, cancel := m.callContext(ctx)
	err = prov.Configure(cctx, sdk.ConfigureRequest{Name: m.cfg.Name, Config: raw, OAuth: m.oauth})
	cancel()
	if err != nil {
		o.err = providerErr(m, "configure", m.unexpand.applyErr(err))
		return o
	}
	cctx, cancel = m.callContext(ctx)
	info, err := prov.Info(cctx)
	cancel()
	if err == nil {
		o.info = info
	} else {
		o.infoErr, o.infoLog = callError(cctx, err), err
	}
	return o
}

// adopt makes o the member's provider; it runs once, inside m.once.
func (m *member) adopt(o opened) {
	m.mu.Lock()
	m.prov, m.client = o.prov, o.client
	m.mu.Unlock()
	m.err, m.info, m.infoErr = o.err, o.info, o.infoErr
	if o.infoLog != nil {
		m.logger.Warn("provider info failed", "provider", m.cfg.Name, "error", o.infoLog)
	}
	m.begun.Store(true)
}

func (m *member) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return withTimeout(ctx, m.callTimeout)
}

// withTimeout bounds ctx by d; d <= 0 adds no bound of its own.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// isProcess reports that the member runs as a plugin process.
func (m *member) isProcess() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.client != nil
}

// close ends the member's plugin process, if it has one.
func (m *member) close() {
	m.mu.Lock()
	client := m.client
	m.mu.Unlock()
	if client != nil {
		client.end()
	}
}

// running is a plugin process the host started and its connection.
type running struct {
	client *plugin.Client
	proc   *pluginProcess
	conn   *grpc.ClientConn
	logger hclog.Logger
	stdio  io.Closer // what relays the plugin's stderr sent over gRPC
}

// controllerShutdown is go-plugin's controller service, which a plugin
// built with go-plugin serves and one written in another language may
// leave out.
const controllerShutdown = "/plugin.GRPCController/Shutdown"

const (
	// shutdownAnswer bounds the Shutdown call itself.
	shutdownAnswer = time.Second
	// exitGrace is how long a plugin that accepted Shutdown has to exit
	// (go-plugin's own wait).
	exitGrace = 2 * time.Second
	// termGrace is how long a plugin without the controller service has
	// to exit after SIGTERM before its group is killed: it holds no state
	// the host needs, so an exit is all that is asked.
	termGrace = 500 * time.Millisecond
)

// end ends the plugin process promptly and quietly: it asks the plugin to
// shut down through go-plugin's controller service; a plugin that does not
// serve it gets SIGTERM (its process group) at once instead of go-plugin's
// 2-second wait and "failed to exit gracefully"; one that is still there
// after the grace is killed. go-plugin's Kill then finds the process gone.
func (r *running) end() {
	if r.proc != nil && r.conn != nil {
		r.proc.ending.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownAnswer)
		err := r.conn.Invoke(ctx, controllerShutdown, &emptypb.Empty{}, &emptypb.Empty{})
		cancel()
		grace := exitGrace
		if status.Code(err) == codes.Unimplemented {
			r.proc.terminate()
			grace = termGrace
		}
		select {
		case <-r.proc.exited:
		case <-time.After(grace):
			r.logger.Warn("plugin did not exit when asked; killing it", "path", r.proc.name)
			r.proc.Kill(context.Background())
			select {
			case <-r.proc.exited:
			case <-time.After(exitGrace):
			}
		}
	}
	r.client.Kill()
	if r.stdio != nil {
		r.stdio.Close()
	}
}

// startInProcess returns a starter that builds a built-in in this process,
// each call bounded by its context as a plugin process's is (a Refresh
// past its deadline gets refreshGrace more; see bounded).
func startInProcess(b Builtin, refreshGrace time.Duration) func(context.Context) (sdk.Provider, *running, error) {
	return func(context.Context) (sdk.Provider, *running, error) {
		return bounded{p: b.New(), refreshGrace: refreshGrace, saves: new(sync.WaitGroup)}, nil, nil
	}
}

// processSpec says how to run one plugin process.
type processSpec struct {
	// cmd returns the command; its Path and Args are used, and its Env, if
	// any, is added to the plugin's environment.
	cmd func() *exec.Cmd
	// name is the configured command, for messages ("" : cmd's Path).
	name string
	// checksum, when set, is the executable's pinned SHA-256 (hex).
	checksum string
	// env names the host's variables the plugin gets beyond the base set.
	env []string
	// environ returns the host's environment (os.Environ).
	environ func() []string
	// script, when set, is the script cmd (an interpreter) runs, pinned
	// by scriptSum when that is set; modules a directory of modules
	// pinned by its tree hash, modulesSum.
	script, scriptSum, modules, modulesSum string
	// verified, when set, is called once every pin was checked, before
	// the process starts (tests change files there).
	verified func()
}

// startProcess returns a starter that runs a plugin process (see
// pluginProcess) and dispenses its Provider; once abort is done, a start
// still under way is ended by killing the process. A pinned executable is
// verified here, on the bytes that then run; go-plugin's own check hashes
// by path and runs the path again, which a rename in between defeats.
func startProcess(spec processSpec, cfg *Config, logLevel hclog.Level, logger hclog.Logger) func(context.Context) (sdk.Provider, *running, error) {
	return func(abort context.Context) (sdk.Provider, *running, error) {
		c := spec.cmd()
		name := spec.name
		if name == "" {
			name = c.Path
		}
		// Mutual TLS with a P-256 identity of this start's own (go-plugin's
		// AutoMTLS makes a P-521 one, a hundred times the CPU): the plugin
		// gets its certificate only, and trusts no other, so a plugin
		// that learns another's address and certificate cannot pass the
		// host's connection meant for itself to that other plugin.
		id, err := sdkplugin.NewClientTLS()
		if err != nil {
			return nil, nil, fmt.Errorf("start plugin %s: %w", name, err)
		}
		var exe, script *executable
		if spec.checksum != "" {
			if exe, err = openPinned(name, spec.checksum); err != nil {
				return nil, nil, err
			}
		}
		if err := spec.interpreted(c, exe, &script); err != nil {
			if exe != nil {
				exe.remove()
			}
			return nil, nil, err
		}
		var proc *pluginProcess
		var started atomic.Pointer[pluginProcess] // proc, for abort
		stopAbort := context.AfterFunc(abort, func() {
			if p := started.Load(); p != nil {
				p.ending.Store(true)
				p.Kill(context.Background())
			}
		})
		defer stopAbort()
		// The handshake, gRPC, mutual TLS and the message cap are every
		// plugin client's (sdkplugin.ClientConfig); how the process starts is
		// the host's.
		// One filter for every string of the plugin's: the tokens that
		// crossed its connection (known once it is dispensed), then the
		// values ${VAR} expansion put in the config, then printable and
		// cut (pluginLogger; sdkplugin for errors and findings).
		var known atomic.Pointer[func(string) string]
		filter := func(s string) string {
			if f := known.Load(); f != nil {
				s = (*f)(s)
			}
			return cfg.unexpand.apply(s)
		}
		var settled atomic.Pointer[func() <-chan struct{}]
		plog := pluginLogger{Logger: logger, filter: filter, settled: &settled}
		cc := sdkplugin.ClientConfig(plog)
		certEnv := id.Apply(cc)
		// A Go plugin's writes to os.Stderr once it serves come over
		// go-plugin's stdio service, not the stderr pipe: they are logged
		// as its stderr lines are.
		stdioR, stdioW := io.Pipe()
		cc.SyncStderr = stdioW
		go relayStderr(stdioR, plog, new(stderrTail))
		cc.StartTimeout = cfg.Plugins.StartTimeout.Std()
		cc.SkipHostEnv = true
		// go-plugin's cmd carries only its own variables (the
		// handshake cookie, the certificate, the socket directory).
		cc.RunnerFunc = func(l hclog.Logger, gp *exec.Cmd, sockets string) (runner.Runner, error) {
			env := pluginEnv(spec.environ(), spec.env)
			env = append(env, c.Env...)
			env = append(env, gp.Env...)
			env = append(env, certEnv)
			// Plugins log at the host's level; their stderr comes back
			// through the host logger, named after the provider.
			env = append(env, sdkplugin.LogLevelEnv+"="+logLevel.String())
			// Its process group is its own (see setProcessGroup).
			if runtime.GOOS != "windows" {
				env = append(env, sdkplugin.OwnGroupEnv+"=1")
			}
			if spec.modules != "" {
				env = append(env, modulesEnv+"="+spec.modules)
			}
			var err error
			proc, err = newPluginProcess(name, c, env, exe, l)
			if proc != nil {
				proc.sockets = sockets
				proc.script = script
				proc.abort = abort
				started.Store(proc)
			}
			return proc, err
		}
		client := plugin.NewClient(cc)
		var rpc plugin.ClientProtocol
		fail := func(err error) (sdk.Provider, *running, error) {
			defer stdioW.Close()
			if proc != nil && proc.ID() != "" {
				// The process first: go-plugin's Kill would wait 2 s for
				// it and say it "failed to exit gracefully".
				proc.ending.Store(true)
				proc.Kill(context.Background())
				select {
				case <-proc.exited:
				case <-time.After(exitGrace):
				}
				proc.cleanup()
				if rpc != nil {
					client.Kill()
				}
			} else {
				client.Kill()
				if proc != nil {
					proc.cleanup()
				} else {
					for _, e := range []*executable{exe, script} {
						if e != nil {
							e.remove()
						}
					}
				}
			}
			return nil, nil, err
		}
		rpc, err = client.Client()
		if err != nil {
			rpc = nil
			if proc != nil {
				if serr := proc.startError(cc.StartTimeout); serr != nil {
					return fail(serr)
				}
			}
			return fail(fmt.Errorf("start plugin %s: %w", name, err))
		}
		prov, err := sdkplugin.Dispense(rpc)
		if err != nil {
			return fail(fmt.Errorf("plugin %s: %w", name, err))
		}
		scrub := sdkplugin.Filter(prov)
		known.Store(&scrub)
		wait := sdkplugin.Settled(prov)
		settled.Store(&wait)
		r := &running{client: client, proc: proc, logger: logger, stdio: stdioW}
		if g, ok := rpc.(*plugin.GRPCClient); ok {
			r.conn = g.Conn
		}
		return prov, r, nil
	}
}

// interpreted verifies an interpreted plugin's script and modules, if its
// entry names them, and makes c run the verified script (addScript); the
// script is returned in *script, to be closed or removed with the process.
func (spec processSpec) interpreted(c *exec.Cmd, exe *executable, script **executable) error {
	if spec.script != "" {
		s, err := openScript(spec.script, spec.scriptSum)
		if err != nil {
			return err
		}
		*script = s
		addScript(c, exe, s)
	}
	if spec.modules != "" {
		if err := verifyModules(spec.modules, spec.modulesSum); err != nil {
			if *script != nil {
				(*script).remove()
			}
			return err
		}
	}
	if spec.verified != nil {
		spec.verified()
	}
	return nil
}

// maxTokenSize caps an access or refresh token the host accepts: real ones
// are a few hundred bytes, and a token is copied into headers, files and
// environments.
const maxTokenSize = 64 << 10

// checkTokenSize rejects a credential whose tokens are implausibly large,
// wherever the host receives one (a read, a refresh; plugin or in-process).
func checkTokenSize(c sdk.Credential) error {
	for _, t := range []struct{ what, v string }{{"access token", c.AccessToken}, {"refresh token", c.RefreshToken}} {
		if len(t.v) > maxTokenSize {
			return fmt.Errorf("returned a credential whose %s is %d bytes; the limit is %d bytes", t.what, len(t.v), maxTokenSize)
		}
	}
	return nil
}
