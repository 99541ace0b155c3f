package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/singleflight"

	"github.com/credhost/credhost/sdk"
)

// Host walks a configured chain of providers and applies the shared rules.
// It is safe for concurrent use. Close ends its plugin processes.
type Host struct {
	cfg     *Config
	members []*member
	logger  hclog.Logger
	now     func() time.Time
	flight  singleflight.Group // one refresh per store at a time

	// last is the last good result, served until it enters the buffer. It
	// is read without a lock (a cached Token is one atomic load and the
	// expiry check) and never changed in place: each write stores a new one.
	last atomic.Pointer[Result]

	// winner is 1 + the index of the member that yielded the last
	// credential (0: none yet): no walk starts a plugin beyond it ahead.
	winner atomic.Int64
	// ending counts plugin processes started ahead and not needed, being
	// ended in the background; Close waits for them.
	ending sync.WaitGroup

	refreshing sync.WaitGroup // refreshes under way, which Close waits for

	// life guards the host's end. Each call that may start a plugin or
	// refresh (a walk, a refresh, a status check) holds an op for its
	// length (enter, leave); Close marks the host closed, so no op begins
	// after it, cancels lifeCtx (what shared walks run under, so a walk
	// whose callers left ends early), and waits for the ops under way
	// before it ends the plugins: no plugin is started after Close ended
	// the others, and none is ended in the middle of a refresh.
	lifeMu     sync.Mutex
	closed     bool
	ops        sync.WaitGroup
	lifeCtx    context.Context
	lifeCancel context.CancelFunc

	faults faultLog // each provider's failure, warned about once

	// chainEnv names the variables the chain reads beyond the base set, and
	// environ is where their values come from (see ChainID).
	chainEnv []string
	environ  func() []string
}

// Option configures New.
type Option func(*options)

type options struct {
	logger   hclog.Logger
	builtins map[string]Builtin
	now      func() time.Time
	environ  func() []string // the environment plugin processes draw from
	verified func()          // tests: called after a plugin's pins are checked, before it starts
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
// the chain first reaches it, and a walk starts the plugin processes just
// after it at the same time (see startAhead), ending those it did not need.
//
// cfg is checked as ParseConfig checks a file (a negative duration, an
// oauth token_url over plain http to another host, a duplicate provider
// name, a refresh_with naming no provider, ...) and completed in place the
// same way: the error is a *ConfigError naming the key, placed at the
// provider entry's Line and Column when it has them. A Config built in Go
// starts from DefaultConfig, which holds every default; a Config with no
// Version did not, and is refused. A provider's command must be absolute.
func New(cfg *Config, opts ...Option) (*Host, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	o := options{
		logger:  hclog.NewNullLogger(),
		now:     time.Now,
		environ: os.Environ,
	}
	for _, opt := range opts {
		opt(&o)
	}
	h := &Host{cfg: cfg, logger: o.logger, now: o.now, environ: o.environ}
	h.lifeCtx, h.lifeCancel = context.WithCancel(context.Background())
	oauth := sdk.OAuthConfig{
		TokenURL:         cfg.OAuth.TokenURL,
		ClientID:         cfg.OAuth.ClientID,
		DefaultExpiresIn: cfg.OAuth.DefaultExpiresIn.Std(),
		BodyFormat:       cfg.OAuth.Body,
		Scopes:           cfg.OAuth.Scopes,
		KeepScopes:       cfg.OAuth.KeepScopes,
		ClientIDMetadata: cfg.OAuth.ClientIDMetadata,
		Timeout:          cfg.Refresh.Timeout.Std(),
	}
	level := o.logger.GetLevel()
	for i, pc := range cfg.Providers {
		m := &member{cfg: pc, oauth: oauth, logger: o.logger, callTimeout: cfg.Plugins.CallTimeout.Std(), unexpand: cfg.unexpand}
		switch {
		case pc.Command != "":
			cmd := func() *exec.Cmd { return exec.Command(pc.Command, pc.Args...) }
			spec := processSpec{cmd: cmd, name: pc.Command, checksum: pc.SHA256, env: pc.Env, environ: o.environ,
				script: pc.Script, scriptSum: pc.ScriptSHA256, modules: pc.Modules, modulesSum: pc.ModulesSHA256, verified: o.verified}
			m.start, m.process = startProcess(spec, cfg, level, o.logger.Named(pc.Name)), true
			h.chainEnv = append(h.chainEnv, pc.Env...)
		default:
			b, ok := o.builtins[pc.Plugin]
			if !ok {
				return nil, &ConfigError{Source: cfg.Source, Line: pc.Line, Column: pc.Column,
					Key: fmt.Sprintf("providers[%d].plugin", i), Msg: cfg.unexpand.apply(fmt.Sprintf("no built-in plugin %q; built-ins are %s", pc.Plugin, builtinNames(o.builtins)))}
			}
			h.chainEnv = append(h.chainEnv, pc.Env...)
			if b.Env != nil {
				h.chainEnv = append(h.chainEnv, b.Env(pc.Config)...)
			}
			if cfg.Plugins.Builtin == BuiltinProcess || b.New == nil {
				spec := processSpec{cmd: b.Command, env: pc.Env, environ: o.environ}
				if b.Env != nil {
					spec.env = append(slices.Clone(pc.Env), b.Env(pc.Config)...)
				}
				m.start, m.process = startProcess(spec, cfg, level, o.logger.Named(pc.Name)), true
			} else {
				m.start = startInProcess(b, cfg.Plugins.CallTimeout.Std())
			}
		}
		h.members = append(h.members, m)
	}
	return h, nil
}

// Config returns the configuration the host runs (do not modify it).
func (h *Host) Config() *Config { return h.cfg }

// Close ends every plugin process the host started, once the refreshes
// under way have finished and been saved (a caller that gave up on one
// does not end it). The processes end together: each takes its shutdown
// and exit, and a chain of several waits for the slowest, not for the sum.
//
// Once Close has begun, calls that would walk the chain, start a plugin
// or refresh fail with ErrClosed (a token still cached is served as
// before); calls under way when it begins are waited for, except shared
// walks (Token's, RefreshRejected's), which are cut short and fail with
// ErrClosed. A refresh under way is never cut short. Close must not be
// called from inside a provider call: it would wait for itself.
func (h *Host) Close() error {
	h.lifeMu.Lock()
	h.closed = true
	h.lifeMu.Unlock()
	h.lifeCancel()
	h.ops.Wait()
	h.refreshing.Wait()
	var closing sync.WaitGroup
	for _, m := range h.members {
		if m.isProcess() {
			closing.Go(m.close)
		}
	}
	closing.Wait()
	h.ending.Wait()
	return nil
}

// enter begins an op (see Host.life); it fails once Close has begun.
// Every successful enter is matched by one leave.
func (h *Host) enter() error {
	h.lifeMu.Lock()
	defer h.lifeMu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.ops.Add(1)
	return nil
}

// leave ends an op begun by enter.
func (h *Host) leave() { h.ops.Done() }

// Result is a credential the chain yielded, and how.
type Result struct {
	// Credential is the winner's credential.
	Credential sdk.Credential
	// Provider names the provider it came from.
	Provider string
	// Refreshed reports that a refresh produced it just now.
	Refreshed bool
	// Degraded reports that it needed a refresh that failed or was not
	// possible, so it was returned as it was: it may still work briefly
	// (clock skew), or not at all. DegradedReason says why.
	Degraded bool
	// DegradedReason is why the result is degraded; nil otherwise.
	DegradedReason error
}

// Token returns a usable credential. A cached one is served without any
// provider call until it enters the expiry buffer; otherwise the chain is
// walked, an env token borrows its store's expiry when it is the same
// token, and a credential inside the buffer is refreshed through its
// store, once for all concurrent callers, and saved. A failed refresh
// returns the old credential with Degraded set. The package documentation
// names each rule and where it is applied.
//
// When no provider yields a credential, the error is a *ChainError
// (errors.Is ErrNoCredential) that lists every provider's reason.
//
// Concurrent callers that find no cached token share one walk (and the
// refresh it may need): a thousand callers on an expired token read the
// chain once, not a thousand times. Each caller still returns when its own
// ctx ends.
func (h *Host) Token(ctx context.Context) (Result, error) {
	if res, ok := h.cached(); ok {
		return res, nil
	}
	// The key cannot be a provider's name: those key the store refreshes.
	return h.shared(ctx, "\x00token", h.fetch)
}

// shared runs fn once for every concurrent caller with the same key
// (singleflight) and gives each its own copy of the result. fn runs under
// a context that the first caller's does not end (the others still wait
// on it), only Close; a caller whose ctx ends first returns ctx's error.
// Each provider call and refresh inside has its own time limit. Keys must
// not be provider names: those key the store refreshes.
func (h *Host) shared(ctx context.Context, key string, fn func(context.Context) (Result, error)) (Result, error) {
	ch := h.flight.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		defer context.AfterFunc(h.lifeCtx, cancel)()
		res, err := fn(ctx)
		if err != nil && h.lifeCtx.Err() != nil {
			// Cut short by Close: not a chain without a credential.
			return Result{}, ErrClosed
		}
		return res, err
	})
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return Result{}, r.Err
		}
		res := r.Val.(Result)
		res.Credential = res.Credential.Clone()
		return res, nil
	}
}

// fetch walks the chain, refreshes the winner's credential when it needs
// it, and caches the result: Token's work when nothing is cached.
func (h *Host) fetch(ctx context.Context) (Result, error) {
	if err := h.enter(); err != nil {
		return Result{}, err
	}
	defer h.leave()
	winner, cred, err := h.walk(ctx)
	if err != nil {
		return Result{}, err
	}
	cred, src := h.refreshSource(ctx, winner, cred)
	res := Result{Credential: cred, Provider: winner.cfg.Name}
	if needsRefresh(cred, h.now(), h.buffer()) {
		res = h.refreshOrDegrade(ctx, res, src, false)
	}
	h.remember(res)
	return res, nil
}

// Refresh forces a refresh of the credential the chain yields now, saves it,
// and returns it (`credhost refresh`). It fails, wrapping ErrRefreshFailed,
// when the credential cannot be refreshed or the refresh fails; it never
// degrades.
func (h *Host) Refresh(ctx context.Context) (Result, error) {
	return h.forceRefresh(ctx, "")
}

// forceRefresh refreshes the chain's credential regardless of its expiry.
// With stale set, a chain that already yields a different token returns it
// instead (someone refreshed since stale was handed out).
func (h *Host) forceRefresh(ctx context.Context, stale string) (Result, error) {
	if err := h.enter(); err != nil {
		return Result{}, err
	}
	defer h.leave()
	h.forget(stale)
	// A refresh since stale was handed out may be known only here: an env
	// token refreshed through its store still reads as the old token.
	if res, ok := h.cached(); ok && stale != "" {
		return res, nil
	}
	winner, cred, err := h.walk(ctx)
	if err != nil {
		return Result{}, err
	}
	cred, src := h.refreshSource(ctx, winner, cred)
	res := Result{Credential: cred, Provider: winner.cfg.Name}
	if stale == "" || cred.AccessToken == stale {
		res = h.refreshOrDegrade(ctx, res, src, true)
		if res.Degraded {
			return Result{}, fmt.Errorf("%w: %w", ErrRefreshFailed, res.DegradedReason)
		}
	}
	h.remember(res)
	return res, nil
}

// forget drops the cached result (only if it holds token, when set).
func (h *Host) forget(token string) {
	for {
		last := h.last.Load()
		if last == nil || (token != "" && last.Credential.AccessToken != token) || h.last.CompareAndSwap(last, nil) {
			return
		}
	}
}

// refreshOrDegrade refreshes res's credential through src, or returns res
// marked degraded with the reason, logged as a warning (degrade) unless the
// refresh was forced.
func (h *Host) refreshOrDegrade(ctx context.Context, res Result, src *source, force bool) Result {
	var reason error
	switch {
	case src == nil:
		reason = fmt.Errorf("provider %q cannot refresh its token (read-only, or an env token whose refresh_with stores hold a different one)", res.Provider)
	case res.Credential.RefreshToken == "":
		reason = fmt.Errorf("provider %q: the credential has no refresh token", res.Provider)
	default:
		fresh, refreshed, err := h.refresh(ctx, src, res.Credential, force)
		if err == nil {
			res.Credential, res.Refreshed = fresh, refreshed
			return res
		}
		reason = err
	}
	res.Degraded, res.DegradedReason = true, reason
	if force {
		// A forced refresh returns no degraded token: its caller gets an
		// error that says why (`credhost refresh` prints it and exits 3).
		return res
	}
	left := "unknown"
	if d, ok := res.Credential.ExpiresIn(h.now()); ok {
		left = d.Round(time.Second).String()
	}
	h.logger.Warn("token needs a refresh that failed; returning it as it is (degraded)", "provider", res.Provider, "expires_in", left, "reason", reason.Error())
	return res
}

// cached returns the remembered result while it is outside the buffer.
func (h *Host) cached() (Result, bool) {
	last := h.last.Load()
	if last == nil || needsRefresh(last.Credential, h.now(), h.buffer()) {
		return Result{}, false
	}
	res := *last
	res.Credential = res.Credential.Clone()
	res.Refreshed = false
	return res, true
}

// remember caches res unless it is degraded (the next call tries again).
func (h *Host) remember(res Result) {
	if res.Degraded {
		h.last.Store(nil)
		return
	}
	res.Credential = res.Credential.Clone()
	h.last.Store(&res)
}

// walk returns the first provider in chain order with a usable credential.
func (h *Host) walk(ctx context.Context) (*member, sdk.Credential, error) {
	var attempts []*ProviderError
	ahead := h.startAhead(ctx)
	defer ahead.release()
	for i, m := range h.members {
		// A walk whose context ended (its callers left, or Close began)
		// starts nothing more.
		if err := ctx.Err(); err != nil {
			return nil, sdk.Credential{}, err
		}
		ahead.reach(i)
		cred, err := h.read(ctx, m)
		if err != nil {
			var pe *ProviderError
			if !errors.As(err, &pe) {
				pe = providerErr(m, "read", err)
			}
			if errors.Is(err, sdk.ErrNotFound) {
				h.faults.clear(h.logger, m.cfg.Name)
				h.logger.Debug("provider has no credential", "provider", m.cfg.Name, "reason", pe.reason())
			} else {
				h.faults.warn(h.logger, m.cfg.Name, pe.reason())
			}
			attempts = append(attempts, pe)
			continue
		}
		h.faults.clear(h.logger, m.cfg.Name)
		h.logger.Debug("credential found", "provider", m.cfg.Name, "credential", cred.String())
		h.winner.Store(int64(i + 1))
		return m, cred, nil
	}
	return nil, sdk.Credential{}, &ChainError{Attempts: attempts, Hint: chainHint(attempts, h.cfg.unexpand)}
}

// read starts m if needed and reads its credential within the call timeout.
// A credential without an access token is a fault of the provider.
func (h *Host) read(ctx context.Context, m *member) (sdk.Credential, error) {
	p, err := m.provider(ctx)
	if err != nil {
		return sdk.Credential{}, err
	}
	ctx, cancel := h.callContext(ctx)
	defer cancel()
	cred, err := p.Read(ctx)
	if err != nil {
		// A read error may quote the provider's config ("$NAME is not
		// set"): quote it as the config file says.
		return sdk.Credential{}, providerErr(m, "read", m.unexpand.applyErr(callError(ctx, err)))
	}
	if cred.AccessToken == "" {
		return sdk.Credential{}, providerErr(m, "read", errors.New("returned a credential with an empty access token"))
	}
	if err := checkTokenSize(cred); err != nil {
		return sdk.Credential{}, providerErr(m, "read", err)
	}
	return cred, nil
}

// callContext bounds one provider call by plugins.call_timeout.
func (h *Host) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return withTimeout(ctx, h.cfg.Plugins.CallTimeout.Std())
}

// callError makes a timed-out call say so plainly.
func callError(ctx context.Context, err error) error {
	if deadlinePassed(ctx) && !errors.Is(err, errCallTimeout) {
		return fmt.Errorf("no answer within the call timeout: %w", err)
	}
	return err
}

// deadlinePassed reports whether ctx's deadline has come, by the clock as
// well as by ctx.Err(): a plugin's side of the call has the same deadline
// and may cancel the stream a moment before the host's own timer fires.
func deadlinePassed(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl.Add(-deadlineSlack))
}

// deadlineSlack absorbs the rounding of the deadline gRPC sends to the
// plugin, so a stream the plugin ended at its deadline counts as a timeout.
const deadlineSlack = 5 * time.Millisecond

func builtinNames(b map[string]Builtin) string {
	if len(b) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(b)), ", ")
}

var _ io.Closer = (*Host)(nil)
