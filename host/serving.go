package host

import (
	"context"
	"errors"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/sdk"
)

// What a long-running holder of a Host (credhost serve) needs beyond
// Token: a refresh asked for by callers that know the rejected token only
// by its fingerprint, and a re-read that notices a store changed behind it.

// RefreshRejected handles a 401 reported by fingerprint (sdk.Fingerprint of
// the rejected token, what `credhost status` shows): when the token the
// host serves now has another fingerprint, someone refreshed since the
// caller got its token, and the current one is returned without a refresh;
// otherwise the current token is force-refreshed as RefreshAfterUnauthorized
// does. Concurrent calls naming the same fingerprint share one call, so
// twenty callers that saw the same token rejected cause one refresh (the
// reactive-refresh and one-refresh rules). An empty fingerprint is a plain
// forced refresh (Refresh).
func (h *Host) RefreshRejected(ctx context.Context, fingerprint string) (Result, error) {
	if fingerprint == "" {
		return h.Refresh(ctx)
	}
	return h.shared(ctx, "\x00rejected "+fingerprint, func(ctx context.Context) (Result, error) {
		cur, err := h.Token(ctx)
		if err != nil {
			return Result{}, err
		}
		if cur.Credential.Fingerprint() != fingerprint {
			return cur, nil
		}
		return h.forceRefresh(ctx, cur.Credential.AccessToken)
	})
}

// Reread walks the chain afresh, past the cached result, and caches what
// it finds; it never refreshes. It is how a holder that serves from memory
// for hours learns of a store changed behind it (a new login, another
// process's refresh) within a bounded staleness, at the cost of one walk of
// the chain. A credential inside the buffer is returned but not cached (the
// next Token refreshes it). A chain in which every provider now holds
// nothing (the user logged out) drops the cached result; a provider's fault
// keeps it, as the token it holds may still be good.
func (h *Host) Reread(ctx context.Context) (Result, error) {
	if err := h.enter(); err != nil {
		return Result{}, err
	}
	defer h.leave()
	before := h.last.Load()
	winner, cred, err := h.walk(ctx)
	if err != nil {
		if allEmpty(err) {
			h.replace(before, nil)
		}
		return Result{}, err
	}
	cred, _ = h.refreshSource(ctx, winner, cred)
	res := Result{Credential: cred, Provider: winner.cfg.Name}
	if needsRefresh(cred, h.now(), h.buffer()) {
		h.replace(before, nil)
		return res, nil
	}
	// A refresh that finished during the walk is newer than what the walk
	// read: replace keeps it.
	c := res
	c.Credential = c.Credential.Clone()
	h.replace(before, &c)
	return res, nil
}

// Peek returns the token the chain yields, without refreshing it: the
// cached result while it is outside the buffer, else what Reread finds
// (possibly inside the buffer or expired). A holder that is waiting out a
// failed refresh's backoff serves this rather than try again per request.
func (h *Host) Peek(ctx context.Context) (Result, error) {
	if res, ok := h.cached(); ok {
		return res, nil
	}
	return h.Reread(ctx)
}

// NeedsRefresh reports whether res's credential is inside the expiry
// buffer (the buffer rule): a Token call would refresh it.
func (h *Host) NeedsRefresh(res Result) bool {
	return needsRefresh(res.Credential, h.now(), h.buffer())
}

// replace sets the cached result to res unless it changed since it was old.
func (h *Host) replace(old, res *Result) {
	h.last.CompareAndSwap(old, res)
}

// allEmpty reports whether err is a chain error in which every provider
// holds nothing (none failed).
func allEmpty(err error) bool {
	var ce *ChainError
	if !errors.As(err, &ce) {
		return false
	}
	for _, a := range ce.Attempts {
		if !errors.Is(a, sdk.ErrNotFound) {
			return false
		}
	}
	return true
}

// faultLog remembers each provider's last failure, so a holder that
// re-reads the chain every few seconds (credhost serve) warns once when a
// provider starts failing or fails for another reason, and once when it
// reads again, rather than repeat the same warning on every re-read. A
// one-shot command walks the chain once and sees every warning.
type faultLog struct {
	mu     sync.Mutex
	reason map[string]string // by provider; absent: not failing
}

// warn logs provider's failure: a warning when it is new or its reason
// changed, a debug line otherwise.
func (f *faultLog) warn(logger hclog.Logger, provider, reason string) {
	f.mu.Lock()
	same := f.reason[provider] == reason
	if !same {
		if f.reason == nil {
			f.reason = map[string]string{}
		}
		f.reason[provider] = reason
	}
	f.mu.Unlock()
	if same {
		logger.Debug("provider still failing; trying the next one", "provider", provider, "error", reason)
		return
	}
	logger.Warn("provider failed; trying the next one", "provider", provider, "error", reason)
}

// clear records that provider read without failing (a credential, or
// none), saying so once when it was failing.
func (f *faultLog) clear(logger hclog.Logger, provider string) {
	f.mu.Lock()
	_, was := f.reason[provider]
	delete(f.reason, provider)
	f.mu.Unlock()
	if was {
		logger.Info("provider reads again", "provider", provider)
	}
}
