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
// daemon to answer its health check before they work directly: a daemon
// that does not answer this fast is as good as none, and a caller must not
// wait on one that hangs.
const daemonDialBound = 500 * time.Millisecond

// noDaemonFlag adds --no-daemon to a command that would use the daemon.
func (g *globals) noDaemonFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&g.noDaemon, "no-daemon", false, "work directly, without asking a running `credhost serve` ($"+daemon.SocketEnv+")")
}

// source is where a command gets its token and status: the daemon, when
// one answers on the socket and serves this process's chain, else a host
// of the command's own. Either gives the same output and exit codes.
type source struct {
	h      *host.Host     // this process's own chain; used directly when client is nil
	client *daemon.Client // the daemon, or nil
	logger hclog.Logger
}

// withSource wraps a command body: it loads the config, builds the host
// (starting no plugin), dials the daemon unless --no-daemon, runs run with
// a context an interrupt cancels, and closes both afterwards.
func (g *globals) withSource(run func(context.Context, *source) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer cancel()
		cfg, opts, logger, err := g.setup()
		if err != nil {
			return err
		}
		src, err := g.openSource(ctx, cfg, opts, logger)
		if err != nil {
			return err
		}
		defer src.close()
		return run(ctx, src)
	}
}

// openSource builds the host and dials the daemon that serves its chain,
// if any.
func (g *globals) openSource(ctx context.Context, cfg *host.Config, opts []host.Option, logger hclog.Logger) (*source, error) {
	h, err := host.New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	src := &source{h: h, logger: logger}
	if g.noDaemon {
		logger.Debug("--no-daemon: working directly")
		return src, nil
	}
	socket := daemon.DefaultSocket()
	c, err := daemon.Dial(ctx, socket,
		daemon.WithChainOf(h.ChainID),
		daemon.WithDialTimeout(daemonDialBound),
		daemon.WithAnswerTimeout(answerBound(cfg)))
	if errors.Is(err, daemon.ErrUntrusted) {
		logger.Warn("not asking the daemon at this socket; working directly", "socket", socket, "reason", err.Error())
		return src, nil
	}
	if err != nil {
		logger.Debug("no daemon to use; working directly", "socket", socket, "reason", err.Error())
		return src, nil
	}
	logger.Debug("using the daemon", "socket", socket, "pid", c.Daemon().PID)
	src.client = c
	return src, nil
}

// answerBound is how long to wait for the daemon's answer: enough for the
// refresh the answer may wait on, with its plugin's start and calls.
func answerBound(cfg *host.Config) time.Duration {
	return cfg.Refresh.Timeout.Std() + cfg.Plugins.StartTimeout.Std() + 3*cfg.Plugins.CallTimeout.Std() + 5*time.Second
}

func (s *source) close() {
	if s.client != nil {
		s.client.Close()
	}
	s.h.Close()
}

// fallBack reports whether err from the daemon means "work directly": no
// daemon answered after all, or it serves another chain now (a reload),
// or its config is broken (this process's own loaded; working directly
// reports this process's problem, if it has one). It logs why.
func (s *source) fallBack(what string, err error) bool {
	if errors.Is(err, daemon.ErrUnavailable) || errors.Is(err, host.ErrConfig) {
		s.logger.Debug("the daemon could not answer; working directly", "request", what, "reason", err.Error())
		s.client.Close()
		s.client = nil
		return true
	}
	return false
}

// token is Host.Token, through the daemon when it serves. A degraded token
// from the daemon is warned of as Host.Token warns of its own.
func (s *source) token(ctx context.Context) (host.Result, error) {
	if s.client != nil {
		t, err := s.client.Token(ctx)
		if err == nil {
			res := t.Result()
			if res.Degraded {
				warnDegraded(s.logger, res)
			}
			return res, nil
		}
		if !s.fallBack("token", err) {
			return host.Result{}, err
		}
	}
	return s.h.Token(ctx)
}

// refresh is Host.Refresh, through the daemon when it serves.
func (s *source) refresh(ctx context.Context) (host.Result, error) {
	if s.client != nil {
		t, err := s.client.Refresh(ctx, "")
		if err == nil {
			return t.Result(), nil
		}
		if !s.fallBack("refresh", err) {
			return host.Result{}, err
		}
	}
	return s.h.Refresh(ctx)
}

// status is Host.Status, through the daemon when it serves.
func (s *source) status(ctx context.Context) ([]host.ProviderStatus, error) {
	if s.client != nil {
		st, err := s.client.Status(ctx)
		if err == nil {
			return st.Providers, nil
		}
		if !s.fallBack("status", err) {
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
