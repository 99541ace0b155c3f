package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/host/daemon"
)

// daemonDialBound is how long token, exec, refresh and status wait for a
// daemon to answer before they work directly (token and exec: their token
// request, or the daemon's interim answer that it works on it; refresh and
// status: its health check): a daemon that does not answer this fast is as
// good as none, and a caller must not wait on one that hangs.
const daemonDialBound = 500 * time.Millisecond

// noDaemonFlag adds --no-daemon to a command that would use the daemon.
func (g *globals) noDaemonFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&g.noDaemon, "no-daemon", false, "work directly, without asking a running `credhost serve` ($"+daemon.SocketEnv+")")
}

// source is where a command gets its token and status: the daemon, when
// one answers on the socket and serves this process's chain, else a host
// of the command's own. Either gives the same output and exit codes.
type source struct {
	h      *host.Host // this process's own chain; used when the daemon is not
	cfg    *host.Config
	logger hclog.Logger
	// socket is the daemon's socket; "" after --no-daemon, or once the
	// daemon failed to answer (the command works directly from then on).
	socket string
	// viaDaemon says the daemon answered.
	viaDaemon bool
}

// withSource wraps a command body: it loads the config, builds the host
// (starting no plugin), runs run with a context an interrupt cancels, and
// closes the host afterwards. The daemon is asked by run's first request,
// unless --no-daemon.
func (g *globals) withSource(run func(context.Context, *source) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer cancel()
		cfg, opts, logger, err := g.setup()
		if err != nil {
			return err
		}
		src, err := g.openSource(cfg, opts, logger)
		if err != nil {
			return err
		}
		defer src.close()
		return run(ctx, src)
	}
}

// openSource builds the host and picks the daemon's socket, unless
// --no-daemon. Nothing is asked of the daemon yet: each of token, refresh
// and status asks it in its own way (token in one request).
func (g *globals) openSource(cfg *host.Config, opts []host.Option, logger hclog.Logger) (*source, error) {
	h, err := host.New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	src := &source{h: h, cfg: cfg, logger: logger}
	if g.noDaemon {
		logger.Debug("--no-daemon: working directly")
		return src, nil
	}
	src.socket = daemon.DefaultSocket()
	return src, nil
}

// dialOptions are the bounds and chain every request to the daemon has.
func (s *source) dialOptions() []daemon.DialOption {
	return []daemon.DialOption{
		daemon.WithChainOf(s.h.ChainID),
		daemon.WithDialTimeout(daemonDialBound),
		daemon.WithAnswerTimeout(answerBound(s.cfg)),
	}
}

// answerBound is how long to wait for the daemon's answer: enough for the
// refresh the answer may wait on, with its plugin's start and calls.
func answerBound(cfg *host.Config) time.Duration {
	return cfg.Refresh.Timeout.Std() + cfg.Plugins.StartTimeout.Std() + 3*cfg.Plugins.CallTimeout.Std() + 5*time.Second
}

func (s *source) close() { s.h.Close() }

// fallBack reports whether err from the daemon means "work directly": no
// daemon answers, an untrusted one (warned of), one of another chain, or
// one whose config is broken (this process's own loaded; working directly
// reports this process's problem, if it has one). It logs why; the
// command asks the daemon nothing more.
func (s *source) fallBack(what string, err error) bool {
	switch {
	case errors.Is(err, daemon.ErrUntrusted):
		s.logger.Warn("not asking the daemon at this socket; working directly", "socket", s.socket, "reason", err.Error())
	case errors.Is(err, daemon.ErrUnavailable):
		s.logger.Debug("no daemon to use; working directly", "socket", s.socket, "request", what, "reason", err.Error())
	case errors.Is(err, host.ErrConfig):
		s.logger.Debug("the daemon could not answer; working directly", "socket", s.socket, "request", what, "reason", err.Error())
	default:
		return false
	}
	s.socket = ""
	return true
}

// used records that the daemon answered.
func (s *source) used() {
	if !s.viaDaemon {
		s.logger.Debug("using the daemon", "socket", s.socket)
		s.viaDaemon = true
	}
}

// token is Host.Token, through the daemon when it serves: one request,
// which is also the check that the daemon answers. A degraded token from
// the daemon is warned of as Host.Token warns of its own.
func (s *source) token(ctx context.Context) (host.Result, error) {
	if s.socket != "" {
		t, err := daemon.FetchToken(ctx, s.socket, s.dialOptions()...)
		if err == nil {
			s.used()
			res := t.Result()
			if res.Degraded {
				warnDegraded(s.logger, res)
			}
			return res, nil
		}
		if !s.fallBack("token", err) {
			s.used()
			return host.Result{}, err
		}
	}
	return s.h.Token(ctx)
}

// dial connects to the daemon for a request that is not a token's: its
// health check proves it answers before a request that may take long (a
// forced refresh). It is nil when the command works directly.
func (s *source) dial(ctx context.Context, what string) *daemon.Client {
	if s.socket == "" {
		return nil
	}
	c, err := daemon.Dial(ctx, s.socket, s.dialOptions()...)
	if err != nil {
		s.fallBack(what, err)
		return nil
	}
	return c
}

// refresh is Host.Refresh, through the daemon when it serves.
func (s *source) refresh(ctx context.Context) (host.Result, error) {
	if c := s.dial(ctx, "refresh"); c != nil {
		defer c.Close()
		t, err := c.Refresh(ctx, "")
		if err == nil {
			s.used()
			return t.Result(), nil
		}
		if !s.fallBack("refresh", err) {
			s.used()
			return host.Result{}, err
		}
	}
	return s.h.Refresh(ctx)
}

// status is Host.Status, through the daemon when it serves.
func (s *source) status(ctx context.Context) ([]host.ProviderStatus, error) {
	if c := s.dial(ctx, "status"); c != nil {
		defer c.Close()
		st, err := c.Status(ctx)
		if err == nil {
			s.used()
			return st.Providers, nil
		}
		if !s.fallBack("status", err) {
			s.used()
			return nil, err
		}
	}
	return s.h.Status(ctx), nil
}

// warnDegraded is the warning Host.Token logs when it returns a degraded
// token, for one the daemon returned: a caller sees the same on stderr
// either way.
func warnDegraded(logger hclog.Logger, res host.Result) {
	left := "unknown"
	if d, ok := res.Credential.ExpiresIn(time.Now()); ok {
		left = d.Round(time.Second).String()
	}
	logger.Warn("token needs a refresh that failed; returning it as it is (degraded)", "provider", res.Provider, "expires_in", left, "reason", res.DegradedReason.Error())
}
