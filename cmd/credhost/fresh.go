package main

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/host/daemon"
)

// freshener keeps the store behind a running command's token fresh ahead
// of expiry, on the schedule `credhost serve` uses too (daemon.Ahead: as
// the token enters the buffer, backoff after a failure, Retry-After
// honoured, a wake-up at least every daemon.MaxNap for a machine that
// slept).
type freshener struct {
	// cfg and opts build a host for each refresh (tokenOnce); it is closed
	// right after, so no plugin process idles between refreshes (hours,
	// for a token of 8h).
	cfg    *host.Config
	opts   []host.Option
	buffer time.Duration
	logger hclog.Logger
}

// run sleeps until the token of first enters the buffer, gets a token
// through a fresh host (which refreshes through the store and saves, once
// across processes), and repeats with the new expiry, until ctx ends. An
// unknown expiry (an env token with no store behind it, such as an
// enterprise token) leaves nothing to do.
func (f *freshener) run(ctx context.Context, first host.Result) {
	a := &daemon.Ahead{
		Buffer:  f.buffer,
		Refresh: func(ctx context.Context, _ host.Result) (host.Result, error) { return f.once(ctx) },
		Logger:  f.logger,
		What:    "the command's token",
	}
	a.Run(ctx, first)
}

// once gets a token through a host of its own. It is not cancelled with
// ctx: a refresh must finish and be saved once it has started (the host
// bounds it by refresh.timeout and the call timeout).
func (f *freshener) once(ctx context.Context) (host.Result, error) {
	return tokenOnce(context.WithoutCancel(ctx), f.cfg, f.opts)
}
