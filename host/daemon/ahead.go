package daemon

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/sdk"
)

// Backoff of refresh ahead: a failed refresh is retried after FirstRetry,
// doubling up to MaxRetry (longer when the token endpoint asked for a
// longer wait, with Retry-After). It keeps trying past the expiry: the next
// success (or a new login in the store) is what the token's users find.
const (
	FirstRetry = time.Second
	MaxRetry   = 5 * time.Minute
)

// MaxNap bounds one sleep: timers run on the monotonic clock, which stops
// while the machine is suspended, but expiry is wall-clock time. Waking now
// and then re-reads the wall clock, so a laptop that slept through the
// refresh time refreshes soon after it wakes.
const MaxNap = 30 * time.Second

// Ahead refreshes a token ahead of its expiry, so that nobody who uses it
// waits on the token endpoint: as it enters the expiry buffer (earlier by
// up to a tenth of the buffer, at random, with Jitter), with backoff after
// a failure. `credhost serve` and `credhost exec` both run one.
//
// It holds no lock and refreshes nothing itself: Refresh does, through a
// Host, which shares one refresh among concurrent callers and takes the
// store's locks like any process (the one-refresh rule).
type Ahead struct {
	// Buffer is the expiry buffer (refresh.buffer).
	Buffer time.Duration
	// Jitter spreads the refreshes of many holders of one login: up to a
	// tenth of the buffer earlier, and up to a tenth more on each backoff.
	Jitter bool
	// Refresh is called when the time has come, with the result the
	// schedule was made from, and returns the fresh result. It must finish
	// a refresh it started even when ctx ends (a refresh abandoned after
	// the endpoint rotated the token leaves the spent one in the store).
	Refresh func(ctx context.Context, current host.Result) (host.Result, error)
	// Check, when set, is called every Every between refreshes; a result
	// with another token or expiry than the current one (a store changed
	// behind the holder: a new login, another process's refresh)
	// reschedules. Check must not refresh.
	Check func(ctx context.Context) (host.Result, error)
	// Every is how often Check runs.
	Every time.Duration
	// Observe, when set, is told of every refresh attempt: its result or
	// error, and when the next one is due after a failure (zero after a
	// success).
	Observe func(res host.Result, err error, retryAt time.Time)
	// Logger receives what the schedule does; never a token.
	Logger hclog.Logger
	// What names the token in log lines ("the command's token").
	What string
}

// Run keeps first's token fresh until ctx ends. A token of unknown expiry
// (an env token with no store behind it, such as an enterprise token)
// leaves nothing to refresh: without Check, Run returns at once.
func (a *Ahead) Run(ctx context.Context, first host.Result) {
	logger := a.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cur := first
	next, ok := a.wake(first.Credential.ExpiresAt)
	if first.Degraded {
		next, ok = time.Now().Add(FirstRetry), true // its refresh just failed
	}
	retry := FirstRetry
	for {
		if !ok && a.Check == nil {
			return
		}
		wake := next
		if a.Check != nil {
			if c := time.Now().Add(a.Every); !ok || c.Before(wake) {
				wake = c
			}
		}
		if !SleepUntil(ctx, wake) {
			return
		}
		if !ok || time.Now().Before(next.Round(0)) {
			res, err := a.Check(ctx)
			if err != nil || sameToken(res, cur) {
				continue
			}
			logger.Debug("the token changed behind "+a.What+"; rescheduling", "provider", res.Provider, "fingerprint", res.Credential.Fingerprint())
			cur, retry = res, FirstRetry
			next, ok = a.wake(res.Credential.ExpiresAt)
			continue
		}
		res, err := a.Refresh(ctx, cur)
		if err == nil && !res.Degraded {
			if res.Refreshed {
				logger.Debug("kept "+a.What+" fresh", "provider", res.Provider, "expires", res.Credential.ExpiresAt.UTC().Format(time.RFC3339))
			}
			if a.Observe != nil {
				a.Observe(res, nil, time.Time{})
			}
			cur, retry = res, FirstRetry
			next, ok = a.wake(res.Credential.ExpiresAt)
			if !ok {
				logger.Debug("the token has no expiry: nothing more to keep fresh", "provider", res.Provider)
			}
			continue
		}
		wait, reason := retry, err
		if err == nil {
			reason = res.DegradedReason
		}
		if res.Provider == "" {
			res.Provider = cur.Provider
		}
		if ra := sdk.RetryDelay(reason); ra > wait {
			wait = ra
		}
		if a.Jitter {
			wait += randUpTo(wait / 10)
		}
		next, ok, retry = time.Now().Add(wait), true, min(retry*2, MaxRetry)
		if a.Observe != nil {
			a.Observe(res, reason, next)
		}
		// The host's own warning names the reason; this one says what
		// happens next. Neither carries a token.
		logger.Warn("could not keep "+a.What+" fresh; retrying", "in", wait.Round(time.Millisecond).String(), "error", errText(reason))
	}
}

// WakeAt is when to refresh a token expiring at expires, seen at now: as it
// enters the buffer. When the endpoint grants tokens shorter than the
// buffer, that moment is always past: then half way to the expiry instead
// of over and over. It has no jitter.
func (a *Ahead) WakeAt(expires, now time.Time) time.Time {
	at := expires.Add(-a.Buffer)
	if at.After(now) {
		return at
	}
	if left := expires.Sub(now); left > 0 {
		return now.Add(left / 2)
	}
	return now
}

// wake is WakeAt from now, with jitter when set; false for an unknown
// expiry.
func (a *Ahead) wake(expires time.Time) (time.Time, bool) {
	if expires.IsZero() {
		return time.Time{}, false
	}
	now := time.Now()
	at := a.WakeAt(expires, now)
	if a.Jitter {
		at = at.Add(-randUpTo(a.Buffer / 10))
	}
	return at, true
}

// sameToken reports whether a and b hold the same token with the same
// expiry.
func sameToken(a, b host.Result) bool {
	return a.Credential.AccessToken == b.Credential.AccessToken && a.Credential.ExpiresAt.Equal(b.Credential.ExpiresAt)
}

func randUpTo(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// SleepUntil waits until t by the wall clock, waking at least every MaxNap
// to read it again; false when ctx ended first.
func SleepUntil(ctx context.Context, t time.Time) bool {
	t = t.Round(0) // compare wall clocks, not monotonic readings
	for {
		d := time.Until(t)
		if d <= 0 {
			return ctx.Err() == nil
		}
		timer := time.NewTimer(min(d, MaxNap))
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
