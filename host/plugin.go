package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"github.com/credhost/credhost/sdk"
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

	once   sync.Once
	prov   sdk.Provider
	client *plugin.Client
	err    error
	info   sdk.Info
	// infoErr is why Info failed: the store's locks are unknown, so it is
	// not refreshed (see refreshLocked).
	infoErr error

	mu      sync.Mutex // guards retryAt, and client against a concurrent close
	retryAt time.Time  // no refresh before this (the endpoint's Retry-After)
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
			m.err = &ProviderError{Provider: m.cfg.Name, Op: "start", Err: err}
			return
		}
		m.mu.Lock()
		m.prov, m.client = prov, client
		m.mu.Unlock()
		raw, err := json.Marshal(m.cfg.Config)
		if err != nil {
			m.err = &ProviderError{Provider: m.cfg.Name, Op: "configure", Err: err}
			return
		}
		if m.cfg.Config == nil {
			raw = []byte("{}")
		}
		cctx, cancel := m.callContext(ctx)
		err = prov.Configure(cctx, sdk.ConfigureRequest{Name: m.cfg.Name, Config: raw, OAuth: m.oauth})
		cancel()
		if err != nil {
			m.err = &ProviderError{Provider: m.cfg.Name, Op: "configure", Err: err}
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

// startInProcess returns a starter that builds a built-in in this process.
func startInProcess(b Builtin) func() (sdk.Provider, *plugin.Client, error) {
	return func() (sdk.Provider, *plugin.Client, error) { return b.New(), nil, nil }
}

// startProcess returns a starter that runs cmd as a go-plugin subprocess and
// dispenses its Provider. checksum, when set, is the executable's SHA-256
// (hex), verified by go-plugin before it starts the process.
func startProcess(cmd func() *exec.Cmd, checksum string, cfg *Config, logLevel hclog.Level, logger hclog.Logger) func() (sdk.Provider, *plugin.Client, error) {
	return func() (sdk.Provider, *plugin.Client, error) {
		c := cmd()
		if c.Env == nil {
			c.Env = os.Environ()
		}
		// Plugins log at the host's level; their stderr comes back through
		// the host logger, named after the provider.
		c.Env = append(c.Env, sdk.LogLevelEnv+"="+logLevel.String())
		cc := &plugin.ClientConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: sdk.PluginSets(nil),
			Cmd:              c,
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
			Logger:           logger,
			StartTimeout:     cfg.Plugins.StartTimeout.Std(),
			AutoMTLS:         true,
			SkipHostEnv:      true,
		}
		if checksum != "" {
			sum, err := hex.DecodeString(checksum)
			if err != nil {
				return nil, nil, fmt.Errorf("sha256: %w", err)
			}
			cc.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
		}
		client := plugin.NewClient(cc)
		rpc, err := client.Client()
		if err != nil {
			client.Kill()
			if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
				return nil, nil, fmt.Errorf("%s: checksum does not match the sha256 pinned in the config", c.Path)
			}
			return nil, nil, fmt.Errorf("start plugin %s: %w", c.Path, err)
		}
		raw, err := rpc.Dispense(sdk.PluginName)
		if err != nil {
			client.Kill()
			return nil, nil, fmt.Errorf("plugin %s: %w", c.Path, err)
		}
		prov, ok := raw.(sdk.Provider)
		if !ok {
			client.Kill()
			return nil, nil, fmt.Errorf("plugin %s: dispensed %T, not a provider", c.Path, raw)
		}
		return prov, client, nil
	}
}
