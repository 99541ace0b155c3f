package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/credhost/credhost/sdk"
)

// needsRefresh is the buffer rule: a credential needs a refresh when it has an expiry
// and now + buffer >= expiry. An unknown expiry means "assume valid".
func needsRefresh(c sdk.Credential, now time.Time, buffer time.Duration) bool {
	return !c.ExpiresAt.IsZero() && !now.Add(buffer).Before(c.ExpiresAt)
}

// source is where a winning credential is refreshed and saved: the provider
// it came from, or for an env token the store it borrowed from (the borrow rule).
type source struct {
	m    *member
	cred sdk.Credential // the credential as that store holds it
}

// refreshSource finds where cred, which winner yielded, can be refreshed.
// For an env token with refresh_with, that is the first listed store holding
// the same access token: cred then borrows that store's expiry and refresh
// token. A store holding a different token lends nothing: its expiry says
// nothing about this token, and refreshing would replace the user's chosen
// token. It returns the (possibly borrowed-into) credential.
func (h *Host) refreshSource(ctx context.Context, winner *member, cred sdk.Credential) (sdk.Credential, *source) {
	if len(winner.cfg.RefreshWith) == 0 {
		// A store whose Info failed may well refresh: refreshLocked
		// refuses it, saying why, rather than call it read-only.
		if winner.info.CanRefresh || winner.infoErr != nil {
			return cred, &source{m: winner, cred: cred}
		}
		return cred, nil
	}
	for _, name := range winner.cfg.RefreshWith {
		m := h.member(name)
		if m == nil {
			continue
		}
		stored, err := h.read(ctx, m)
		if err != nil {
			h.logger.Debug("refresh_with store has nothing to lend", "provider", winner.cfg.Name, "store", name, "reason", err.Error())
			continue
		}
		if stored.AccessToken != cred.AccessToken {
			h.logger.Debug("refresh_with store holds a different token; not borrowing", "provider", winner.cfg.Name, "store", name)
			continue
		}
		cred.ExpiresAt, cred.RefreshToken = stored.ExpiresAt, stored.RefreshToken
		if cred.Scopes == nil {
			cred.Scopes = stored.Scopes
		}
		h.logger.Debug("borrowed expiry and refresh token", "provider", winner.cfg.Name, "store", name)
		return cred, &source{m: m, cred: stored}
	}
	return cred, nil
}

func (h *Host) member(name string) *member {
	for _, m := range h.members {
		if m.cfg.Name == name {
			return m
		}
	}
	return nil
}

// refreshResult is what one shared refresh yields to every waiter.
type refreshResult struct {
	cred      sdk.Credential
	refreshed bool // false: the store already held a fresh token
}

// refresh obtains a fresh credential through src, given stale (the token the
// caller saw). Concurrent callers for the same store share one refresh
// (the one-refresh rule). Inside it, the store is re-read first: if it already holds a
// different, usable token (another process refreshed), that token wins and
// nothing is sent. With force, a usable stored token is refreshed anyway
// unless it differs from stale (a 401 on stale says nothing about it).
func (h *Host) refresh(ctx context.Context, src *source, stale sdk.Credential, force bool) (sdk.Credential, bool, error) {
	m := src.m
	// Counted until the shared refresh ends, even when this caller gives
	// up first: Close waits for it, so a plugin is never ended between
	// the endpoint's answer and the save.
	h.refreshing.Add(1)
	shared := h.flight.DoChan(m.cfg.Name, func() (any, error) {
		// The shared refresh must not die with the first caller's context.
		// A refresh.timeout of 0 is no refresh-specific bound (the call
		// timeout applies), not a deadline that has already passed.
		ctx, cancel := h.callContextFor(context.WithoutCancel(ctx), h.cfg.Refresh.Timeout.Std())
		defer cancel()
		return h.refreshLocked(ctx, m, stale, force)
	})
	ch := make(chan singleflight.Result, 1)
	go func() {
		r := <-shared
		h.refreshing.Done()
		ch <- r
	}()
	select {
	case <-ctx.Done():
		return sdk.Credential{}, false, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return sdk.Credential{}, false, r.Err
		}
		res := r.Val.(refreshResult)
		return res.cred.Clone(), res.refreshed, nil
	}
}

func (h *Host) refreshLocked(ctx context.Context, m *member, stale sdk.Credential, force bool) (refreshResult, error) {
	p, err := m.provider(ctx)
	if err != nil {
		return refreshResult{}, err
	}
	// A store whose Info failed has locks nobody knows: refreshing it
	// without them is the race they exist to stop.
	if m.infoErr != nil {
		return refreshResult{}, providerErr(m, "refresh", fmt.Errorf("not refreshing: the provider's Info failed, so its locks are unknown (%w)", m.infoErr))
	}
	locks, err := storeLocks(m.info)
	if err != nil {
		return refreshResult{}, providerErr(m, "refresh", m.unexpand.applyErr(err))
	}
	// Across processes: hold the store's refresh locks over re-read,
	// refresh and save, so a second process finds the new token in the
	// store.
	held, err := takeLocks(ctx, inScope(locks, sdk.LockScopeRefresh), nil, p, h.logger)
	if err != nil {
		return refreshResult{}, providerErr(m, "refresh", m.unexpand.applyErr(err))
	}
	defer held.release()
	now := h.now()
	current, err := h.read(ctx, m)
	switch {
	case err == nil && current.AccessToken != stale.AccessToken && !needsRefresh(current, now, h.buffer()):
		h.logger.Info("store already holds a fresh token (refreshed elsewhere); using it", "provider", m.cfg.Name)
		return refreshResult{cred: current}, nil
	case err == nil && !force && !needsRefresh(current, now, h.buffer()):
		return refreshResult{cred: current}, nil
	case err != nil:
		// The store cannot be read now; refresh what the caller saw.
		h.logger.Warn("re-reading the store before refresh failed; refreshing the token in hand", "provider", m.cfg.Name, "error", err.Error())
		current = stale
	}
	if current.RefreshToken == "" {
		return refreshResult{}, providerErr(m, "refresh", errors.New("the credential has no refresh token"))
	}
	// A refresh token the endpoint already rejected while the store held
	// it is spent (a process killed mid-refresh may have been given its
	// successor, which nobody holds): presenting it again on every call
	// would only be rejected again.
	if m.rejected(current.RefreshToken) {
		return refreshResult{}, providerErr(m, "refresh", fmt.Errorf("%w earlier and the store still holds it, so it is not presented again: log in again", sdk.ErrInvalidGrant))
	}
	at, err := m.retryAfter(now)
	if err != nil {
		return refreshResult{}, providerErr(m, "refresh", err)
	}
	if now.Before(at) {
		return refreshResult{}, providerErr(m, "refresh", fmt.Errorf("token endpoint asked to wait; not retrying before %s", at.Format(time.RFC3339)))
	}

	// A lock taken over since it was taken (this process was stopped past
	// its stale time) may mean another process is refreshing this very
	// token: sending it too would be the reuse the locks exist to stop.
	if err := held.lost(); err != nil {
		return refreshResult{}, providerErr(m, "refresh", m.unexpand.applyErr(fmt.Errorf("not refreshing: %w", err)))
	}

	// ctx already carries the refresh's deadline (see refresh). A
	// refresh error may quote the config (the token URL): quote it as
	// the config file says.
	fresh, err := p.Refresh(ctx, current)
	err = m.unexpand.applyErr(err)
	if err != nil {
		if ra := sdk.RetryDelay(err); ra > 0 {
			m.setRetryAfter(now, now.Add(ra))
		}
		if errors.Is(err, sdk.ErrInvalidGrant) {
			// Another process may have rotated the token: if the store now
			// holds a different refresh token, that one wins. The re-read
			// gets its own call timeout: a slow answer may have used up
			// the refresh's time.
			if again, rerr := h.read(context.WithoutCancel(ctx), m); rerr == nil && again.RefreshToken != current.RefreshToken {
				h.logger.Info("refresh token was rotated by another process; using the stored token", "provider", m.cfg.Name)
				return refreshResult{cred: again}, nil
			}
			m.setRejected(current.RefreshToken)
			return refreshResult{}, providerErr(m, "refresh", fmt.Errorf("%w; the store still holds the rejected refresh token: log in again", err))
		}
		return refreshResult{}, providerErr(m, "refresh", callError(ctx, err))
	}
	// Keep the refresh token, enforced here for every provider, private ones
	// included.
	if fresh.AccessToken == "" {
		return refreshResult{}, providerErr(m, "refresh", errors.New("refresh returned an empty access token"))
	}
	if err := checkTokenSize(fresh); err != nil {
		return refreshResult{}, providerErr(m, "refresh", err)
	}
	if fresh.RefreshToken == "" {
		fresh.RefreshToken = current.RefreshToken
	}
	if fresh.ExpiresAt.IsZero() && h.cfg.OAuth.DefaultExpiresIn > 0 {
		fresh.ExpiresAt = h.now().Add(h.cfg.OAuth.DefaultExpiresIn.Std())
	}
	if fresh.Metadata == nil {
		fresh.Metadata = current.Metadata
	}

	if !at.IsZero() {
		m.setRetryAfter(now, time.Time{})
	}
	m.setRejected("") // a new refresh token: any record is out of date
	if needsRefresh(fresh, h.now(), h.buffer()) {
		left, _ := fresh.ExpiresIn(h.now())
		h.logger.Warn("the new token expires within the refresh buffer, so every use will refresh it; lower refresh.buffer",
			"provider", m.cfg.Name, "expires_in", left.Round(time.Second).String(), "buffer", h.buffer().String())
	}
	// Save failure: a failed save still returns the new token. The endpoint has
	// spent the old refresh token, so the save gets its own call timeout
	// even when the answer used up the refresh's time: a store left holding
	// the spent token makes the next refresh a reuse.
	// The save-scope locks (another program's lock around its writes) are
	// taken right before the save, inside the refresh locks, with a
	// refresh.timeout of their own for the same reason.
	// A lock taken over during the token request does not stop the save:
	// the old refresh token is spent, and the process that took the lock
	// over re-reads the store before it refreshes, so the sooner the new
	// token is there the likelier it finds it rather than reuse the old.
	//
	// A lock the provider holds (a fleet's lease) lost before the save is
	// different: another machine may hold it now and may have saved its
	// own refresh, which a blind save would overwrite. The store is
	// re-read first, and the new token saved only if the store still
	// holds the one this refresh started from; the store's own
	// compare-and-swap on the version it read (etcd's ModRevision) is the
	// last guard against a write landing in between.
	if err := held.lostProvider(); err != nil {
		if cred, saved := h.saveAfterLoss(ctx, m, p, current, fresh, locks, held.journal, err); !saved {
			return refreshResult{cred: cred, refreshed: cred.AccessToken == fresh.AccessToken}, nil
		}
		return refreshResult{cred: fresh, refreshed: true}, nil
	}
	if err := held.lost(); err != nil {
		h.logger.Warn("saving the refreshed token although a lock was taken over during the request", "provider", m.cfg.Name, "error", err.Error())
	}
	err = m.unexpand.applyErr(h.save(context.WithoutCancel(ctx), m, p, fresh, locks, held.journal))
	if err != nil {
		h.logger.Warn("refreshed, but saving the new token failed; it is used for now and will be lost when this process ends", "provider", m.cfg.Name, "error", err.Error())
	} else {
		h.logger.Info("refreshed and saved", "provider", m.cfg.Name, "expires", fresh.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return refreshResult{cred: fresh, refreshed: true}, nil
}

// saveAfterLoss decides what becomes of fresh, refreshed from current
// under a provider lock that was lost (lost, why) before the save. It
// saves fresh only when a re-read shows the store still holding current;
// a store holding another login (another holder refreshed and saved) is
// left alone and its credential returned, so the fleet keeps one login;
// a store that cannot be read is not written either, and fresh is used
// unsaved. saved says whether fresh went to the store; cred is the
// credential to use.
func (h *Host) saveAfterLoss(ctx context.Context, m *member, p sdk.Provider, current, fresh sdk.Credential, locks []sdk.Lock, j *journal, lost error) (cred sdk.Credential, saved bool) {
	lost = m.unexpand.applyErr(lost)
	again, err := h.read(context.WithoutCancel(ctx), m)
	switch {
	case err != nil:
		h.logger.Warn("refreshed, but the store's lock was lost and the store cannot be read to check that nobody saved since; not saving (the new token is used for now and will be lost when this process ends)", "provider", m.cfg.Name, "lost", lost.Error(), "error", err.Error())
		return fresh, false
	case again.RefreshToken != current.RefreshToken:
		h.logger.Warn("refreshed, but the store's lock was lost and another holder has saved a new login since; using it, not overwriting it", "provider", m.cfg.Name, "lost", lost.Error())
		return again, false
	}
	h.logger.Warn("the store's lock was lost during the refresh; the store still holds the token refreshed, so saving (the store's compare-and-swap guards the write)", "provider", m.cfg.Name, "lost", lost.Error())
	if err := m.unexpand.applyErr(h.save(context.WithoutCancel(ctx), m, p, fresh, locks, j)); err != nil {
		h.logger.Warn("refreshed, but saving the new token failed; it is used for now and will be lost when this process ends", "provider", m.cfg.Name, "error", err.Error())
	}
	return fresh, true
}

// save takes the save-scope locks of locks (the store's), saves, and
// releases them only once the provider's Save has returned: a write still
// running could land after the locks are released, over a token another
// process saved since (or after it read the spent one). An in-process Save
// is waited for; a plugin whose Save outlives the call timeout is ended
// before any of the store's locks are released.
func (h *Host) save(ctx context.Context, m *member, p sdk.Provider, cred sdk.Credential, locks []sdk.Lock, j *journal) error {
	lctx, cancel := h.callContextFor(ctx, h.cfg.Refresh.Timeout.Std())
	defer cancel()
	held, err := takeLocks(lctx, inScope(locks, sdk.LockScopeSave), j, p, h.logger)
	if err != nil {
		return err
	}
	defer held.release()
	sctx, cancel := h.callContext(ctx)
	defer cancel()
	err = p.Save(sctx, cred)
	// By the clock too: the plugin's side of the call has the same
	// deadline and may end the stream a moment before this side's timer
	// fires, with its write still to come.
	if err != nil && len(locks) > 0 && deadlinePassed(sctx) {
		if m.isProcess() {
			h.logger.Warn("the plugin's save did not answer within the call timeout; ending the plugin so its write cannot land after the store's locks are released", "provider", m.cfg.Name)
			m.close()
		} else if w, ok := p.(interface{ waitSaves() }); ok {
			h.logger.Warn("the save did not finish within the call timeout; holding the store's locks until it does", "provider", m.cfg.Name)
			w.waitSaves()
		}
	}
	return err
}

func (h *Host) buffer() time.Duration { return h.cfg.Refresh.Buffer.Std() }

// callContextFor bounds a call by d (or the call timeout when d is 0).
func (h *Host) callContextFor(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return withTimeout(ctx, d)
	}
	return h.callContext(ctx)
}
