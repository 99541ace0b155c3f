package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/host/daemon"
)

// shutdownGrace bounds how long a stopping daemon waits for requests in
// flight: a refresh is bounded by refresh.timeout (30s by default) and is
// finished and saved even when its caller has gone.
const shutdownGrace = time.Minute

func serveCommand(g *globals) *cobra.Command {
	var socket string
	var staleness time.Duration
	cmd := &cobra.Command{
		Use:   "serve [--socket PATH]",
		Short: "Serve tokens to every agent of this user over a local socket, refreshing ahead of expiry",
		Long: `Run the credhost daemon: one process that holds the chain for every agent of
this user, serves the token from memory over a unix socket (HTTP/JSON under
/v1: GET /v1/token, POST /v1/refresh, GET /v1/status, GET /v1/health,
GET /metrics), refreshes ahead of expiry, and turns many callers' 401s into
one refresh.

Requests are answered from memory; the chain is re-read every --staleness,
so a store changed behind the daemon (a new login, another process's
refresh) is served within that bound.

Socket: --socket, else $CREDHOST_SOCKET, else $XDG_RUNTIME_DIR/credhost/credhost.sock,
else credhost.sock in a per-user directory under the temporary directory.
The directory must be this user's with mode 0700; the socket is 0600, and a
request from another user is refused (403). One daemon per socket: a second
one exits 2 naming the first one's pid. Under systemd socket activation
(LISTEN_FDS) the socket handed over is used instead.

Signals: TERM and INT finish the requests in flight, remove the socket and
end the plugins; HUP reloads the config (a bad one is logged and the old one
kept).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if staleness <= 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--staleness %s: want a duration above 0, such as 2s", staleness)}
			}
			cfg, opts, logger, err := g.setup()
			if err != nil {
				return err
			}
			h, err := host.New(cfg, opts...)
			if err != nil {
				return err
			}
			ln, err := serveListener(socket)
			if err != nil {
				h.Close()
				return &exitError{code: exitUsage, err: err}
			}
			srv := daemon.NewServer(daemon.Options{Host: h, Logger: logger.Named("serve"), Staleness: staleness})
			defer srv.Close()
			logger.Info("serving", "socket", ln.Path(), "pid", os.Getpid(), "config", cfg.Source)

			ctx, stop := signal.NotifyContext(cmd.Context(), stopSignals...)
			defer stop()
			go reloadOnHangup(ctx, g, srv, logger)
			err = srv.Serve(ctx, ln, shutdownGrace)
			ln.Close()
			logger.Info("stopped", "socket", ln.Path())
			if err != nil && !errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("serve: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&staleness, "staleness", daemon.DefaultStaleness, "how often the chain is re-read for changes made behind the daemon")
	cmd.Flags().StringVar(&socket, "socket", "", "the socket's path (default: $"+daemon.SocketEnv+", see above)")
	return cmd
}

// serveListener is the socket handed over by the service manager, or the
// one at path (default: daemon.DefaultSocket).
func serveListener(path string) (*daemon.Listener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	for _, ln := range lns {
		if ln != nil {
			for _, other := range lns {
				if other != nil && other != ln {
					other.Close()
				}
			}
			return daemon.Activated(ln)
		}
	}
	if path == "" {
		path = daemon.DefaultSocket()
	}
	return daemon.Listen(path)
}

// reloadOnHangup rebuilds the host from the config on every hangup signal,
// until ctx ends. A config that does not load is logged, and the running
// one kept.
func reloadOnHangup(ctx context.Context, g *globals, srv *daemon.Server, logger hclog.Logger) {
	hup := make(chan os.Signal, 1)
	notifyHangup(hup)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		cfg, opts, _, err := g.setup()
		var h *host.Host
		if err == nil {
			h, err = host.New(cfg, opts...)
		}
		if err != nil {
			logger.Error("reloading the config failed; still serving the previous one", "error", err.Error())
			continue
		}
		srv.Reload(h)
		logger.Info("config reloaded", "config", cfg.Source)
	}
}
