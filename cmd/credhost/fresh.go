package main

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/sdk"
)

// Backoff of the refreshes while `credhost exec` runs its command: a failed
// refresh is retried after firstRetry, doubling up to maxRetry (longer when
// the endpoint asked for a longer wait), for as long as the command runs.
// It keeps trying past the expiry: the next success (or a new login in the
// store) is what the command's client finds on its next 401.
const (
	firstRetry = time.Second
	maxRetry   = 5 * time.Minute
)

// maxNap bounds one sleep: timers run on the monotonic clock, which stops
// while the machine is suspended, but expiry is wall-clock time. Waking now
// and then re-reads the wall clock, so a laptop that slept through the
// refresh time refreshes soon after it wakes.
const maxNap = 30 * time.Second

// freshener keeps the store behind a running command's token fresh ahead
// of expiry.
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
	if first.Credential.ExpiresAt.IsZero() {
		return
	}
	next := f.wakeAt(first.Credential.ExpiresAt)
	if first.Degraded {
		next = time.Now().Add(firstRetry) // its refresh just failed
	}
	retry := firstRetry
	for {
		if !sleepUntil(ctx, next) {
			return
		}
		res, err := f.once(ctx)
		if err == nil && !res.Degraded {
			if res.Refreshed {
				f.logger.Debug("kept the token fresh", "provider", res.Provider, "expires", res.Credential.ExpiresAt.UTC().Format(time.RFC3339))
			}
			if res.Credential.ExpiresAt.IsZero() {
				f.logger.Debug("the store's token has no expiry: nothing more to keep fresh", "provider", res.Provider)
				return
			}
			next, retry = f.wakeAt(res.Credential.ExpiresAt), firstRetry
			continue
		}
		wait, reason := retry, err
		if err == nil {
			reason = res.DegradedReason
		}
		if ra := sdk.RetryDelay(reason); ra > wait {
			wait = ra
		}
		// The host's own warning names the reason; this one says what
		// happens next. Neither carries a token.
		f.logger.Warn("could not keep the command's token fresh; retrying", "in", wait.String(), "error", errText(reason))
		next, retry = time.Now().Add(wait), min(retry*2, maxRetry)
	}
}

// wakeAt is when to refresh a token expiring at expires: as it enters the
// buffer. When the endpoint grants tokens shorter than the buffer, that
// moment is always past: then refresh half way to the expiry instead of
// over and over.
func (f *freshener) wakeAt(expires time.Time) time.Time {
	at := expires.Add(-f.buffer)
	now := time.Now()
	if at.After(now) {
		return at
	}
	if left := expires.Sub(now); left > 0 {
		return now.Add(left / 2)
	}
	return now
}

// once gets a token through a host of its own. It is not cancelled with
// ctx: a refresh must finish and be saved once it has started (the host
// bounds it by refresh.timeout and the call timeout).
func (f *freshener) once(ctx context.Context) (host.Result, error) {
	return tokenOnce(context.WithoutCancel(ctx), f.cfg, f.opts)
}

// sleepUntil waits until t by the wall clock; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	t = t.Round(0) // compare wall clocks, not monotonic readings
	for {
		d := time.Until(t)
		if d <= 0 {
			return ctx.Err() == nil
		}
		timer := time.NewTimer(min(d, maxNap))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}
