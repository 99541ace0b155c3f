package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/sdk"
)

// Host walks a configured chain of providers and applies the shared rules.
// It is safe for concurrent use. Close ends its plugin processes.
type Host struct {
	cfg     *Config
	members []*member
	logger  hclog.Logger
	now     func() time.Time
}

// Option configures New.
type Option func(*options)

type options struct {
	logger   hclog.Logger
	builtins map[string]Builtin
	now      func() time.Time
	command  func(path string, args ...string) *exec.Cmd
}

// WithLogger sets the logger for the host and its plugins' forwarded logs.
// The default discards everything.
func WithLogger(l hclog.Logger) Option { return func(o *options) { o.logger = l } }

// WithBuiltins names the providers compiled into the program, usable in the
// config as `plugin: NAME`.
func WithBuiltins(b map[string]Builtin) Option { return func(o *options) { o.builtins = b } }

// WithNow replaces time.Now, for tests.
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New builds a host for cfg. It starts no plugin: each provider starts when
// the chain first reaches it.
func New(cfg *Config, opts ...Option) (*Host, error) {
	o := options{
		logger:  hclog.NewNullLogger(),
		now:     time.Now,
		command: exec.Command,
	}
	for _, opt := range opts {
		opt(&o)
	}
	h := &Host{cfg: cfg, logger: o.logger, now: o.now}
	oauth := sdk.OAuthConfig{
		TokenURL:         cfg.OAuth.TokenURL,
		ClientID:         cfg.OAuth.ClientID,
		DefaultExpiresIn: cfg.OAuth.DefaultExpiresIn.Std(),
		BodyFormat:       cfg.OAuth.Body,
		Scopes:           cfg.OAuth.Scopes,
		Timeout:          cfg.Refresh.Timeout.Std(),
	}
	level := o.logger.GetLevel()
	for i, pc := range cfg.Providers {
		m := &member{cfg: pc, oauth: oauth, logger: o.logger}
		switch {
		case pc.Command != "":
			cmd := func() *exec.Cmd { return o.command(pc.Command, pc.Args...) }
			m.start = startProcess(cmd, pc.SHA256, cfg, level, o.logger.Named(pc.Name))
		default:
			b, ok := o.builtins[pc.Plugin]
			if !ok {
				return nil, &ConfigError{Source: cfg.Source, Line: pc.Line, Column: pc.Column,
					Key: fmt.Sprintf("providers[%d].plugin", i), Msg: fmt.Sprintf("no built-in plugin %q; built-ins are %s", pc.Plugin, builtinNames(o.builtins))}
			}
			if cfg.Plugins.Builtin == BuiltinProcess || b.New == nil {
				m.start = startProcess(b.Command, "", cfg, level, o.logger.Named(pc.Name))
			} else {
				m.start = startInProcess(b)
			}
		}
		h.members = append(h.members, m)
	}
	return h, nil
}

// Close ends every plugin process the host started.
func (h *Host) Close() error {
	for _, m := range h.members {
		m.close()
	}
	return nil
}

// Result is a credential the chain yielded, and how.
type Result struct {
	// Credential is the winner's credential.
	Credential sdk.Credential
	// Provider names the provider it came from.
	Provider string
	// Refreshed reports that a refresh produced it just now.
	Refreshed bool
	// Degraded reports that it needed a refresh that failed, so it was
	// returned as it was (it may still work briefly, or not at all).
	Degraded bool
}

// Token walks the chain and returns the first usable credential. When no
// provider yields one, the error is a *ChainError (errors.Is
// ErrNoCredential) that lists every provider's reason.
func (h *Host) Token(ctx context.Context) (Result, error) {
	var attempts []*ProviderError
	for _, m := range h.members {
		cred, err := h.read(ctx, m)
		if err != nil {
			var pe *ProviderError
			if !errors.As(err, &pe) {
				pe = &ProviderError{Provider: m.cfg.Name, Op: "read", Err: err}
			}
			if errors.Is(err, sdk.ErrNotFound) {
				h.logger.Debug("provider has no credential", "provider", m.cfg.Name, "reason", err.Error())
			} else {
				h.logger.Warn("provider failed; trying the next one", "provider", m.cfg.Name, "error", pe.Err.Error())
			}
			attempts = append(attempts, pe)
			continue
		}
		h.logger.Debug("credential found", "provider", m.cfg.Name, "credential", cred.String())
		return Result{Credential: cred, Provider: m.cfg.Name}, nil
	}
	return Result{}, &ChainError{Attempts: attempts, Hint: hint(h.cfg)}
}

// read starts m if needed and reads its credential within the call timeout.
// A credential without an access token is a fault of the provider.
func (h *Host) read(ctx context.Context, m *member) (sdk.Credential, error) {
	ctx, cancel := h.callContext(ctx)
	defer cancel()
	p, err := m.provider(ctx)
	if err != nil {
		return sdk.Credential{}, err
	}
	cred, err := p.Read(ctx)
	if err != nil {
		return sdk.Credential{}, &ProviderError{Provider: m.cfg.Name, Op: "read", Err: callError(ctx, err)}
	}
	if cred.AccessToken == "" {
		return sdk.Credential{}, &ProviderError{Provider: m.cfg.Name, Op: "read", Err: errors.New("returned a credential with an empty access token")}
	}
	return cred, nil
}

// callContext bounds one provider call by plugins.call_timeout.
func (h *Host) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d := h.cfg.Plugins.CallTimeout.Std(); d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// callError makes a timed-out call say so plainly.
func callError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within the call timeout: %w", err)
	}
	return err
}

func builtinNames(b map[string]Builtin) string {
	if len(b) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(b)), ", ")
}

var _ io.Closer = (*Host)(nil)
