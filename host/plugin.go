package host

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

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
// pays for the providers after the winner.
type member struct {
	cfg         ProviderConfig
	oauth       sdk.OAuthConfig
	start       func() (sdk.Provider, *plugin.Client, error)
	logger      hclog.Logger
	callTimeout time.Duration // bounds Configure and Info, not the start
	// unexpand makes start and configure errors, which may quote the
	// config, read as the config file does, not as ${VAR} expanded.
	unexpand unexpander

	once   sync.Once
	prov   sdk.Provider
	client *plugin.Client
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
	m.once.Do(func() {
		ctx := context.WithoutCancel(ctx)
		prov, client, err := m.start()
		if err != nil {
			m.err = providerErr(m, "start", m.unexpand.applyErr(err))
			return
		}
		m.mu.Lock()
		m.prov, m.client = prov, client
		m.mu.Unlock()
		raw, err := json.Marshal(m.cfg.Config)
		if err != nil {
			m.err = providerErr(m, "configure", err)
			return
		}
		if m.cfg.Config == nil {
			raw = []byte("{}")
		}
		cctx, cancel := m.callContext(ctx)
		err = prov.Configure(cctx, sdk.ConfigureRequest{Name: m.cfg.Name, Config: raw, OAuth: m.oauth})
		cancel()
		if err != nil {
			m.err = providerErr(m, "configure", m.unexpand.applyErr(err))
			return
		}
		cctx, cancel = m.callContext(ctx)
		info, err := prov.Info(cctx)
		cancel()
		if err == nil {
			m.info = info
		} else {
			m.infoErr = callError(cctx, err)
			m.logger.Warn("provider info failed", "provider", m.cfg.Name, "error", err)
		}
	})
	return m.prov, m.err
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
		client.Kill()
	}
}

// startInProcess returns a starter that builds a built-in in this process,
// each call bounded by its context as a plugin process's is (a Refresh
// past its deadline gets refreshGrace more; see bounded).
func startInProcess(b Builtin, refreshGrace time.Duration) func() (sdk.Provider, *plugin.Client, error) {
	return func() (sdk.Provider, *plugin.Client, error) {
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
// pluginProcess) and dispenses its Provider. A pinned executable is
// verified here, on the bytes that then run; go-plugin's own check hashes
// by path and runs the path again, which a rename in between defeats.
func startProcess(spec processSpec, cfg *Config, logLevel hclog.Level, logger hclog.Logger) func() (sdk.Provider, *plugin.Client, error) {
	return func() (sdk.Provider, *plugin.Client, error) {
		c := spec.cmd()
		name := spec.name
		if name == "" {
			name = c.Path
		}
		var exe, script *executable
		if spec.checksum != "" {
			var err error
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
		// The handshake, gRPC, mutual TLS and the message cap are every
		// plugin client's (sdkplugin.ClientConfig); how the process starts is
		// the host's.
		cc := sdkplugin.ClientConfig(pluginLogger{logger})
		cc.StartTimeout = cfg.Plugins.StartTimeout.Std()
		cc.SkipHostEnv = true
		// go-plugin's cmd carries only its own variables (the
		// handshake cookie, the certificate, the socket directory).
		cc.RunnerFunc = func(l hclog.Logger, gp *exec.Cmd, sockets string) (runner.Runner, error) {
			env := pluginEnv(spec.environ(), spec.env)
			env = append(env, c.Env...)
			env = append(env, gp.Env...)
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
			}
			return proc, err
		}
		client := plugin.NewClient(cc)
		fail := func(err error) (sdk.Provider, *plugin.Client, error) {
			client.Kill()
			if proc != nil {
				proc.Kill(context.Background())
				proc.cleanup()
			} else {
				for _, e := range []*executable{exe, script} {
					if e != nil {
						e.remove()
					}
				}
			}
			return nil, nil, err
		}
		rpc, err := client.Client()
		if err != nil {
			if proc != nil {
				if serr := proc.stdoutError(); serr != nil {
					return fail(serr)
				}
			}
			return fail(fmt.Errorf("start plugin %s: %w", name, err))
		}
		prov, err := sdkplugin.Dispense(rpc)
		if err != nil {
			return fail(fmt.Errorf("plugin %s: %w", name, err))
		}
		return prov, client, nil
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
