package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/credhost/credhost/sdk"
)

// hold is the fleet lock held: an etcd mutex (concurrency.NewMutex) whose
// key lives on this process's lease. The lease is kept alive while held;
// if this process dies, or loses the cluster for longer than lock_ttl,
// the lease expires, etcd deletes the key and the next machine in line
// gets the lock. A hold that lost its lease can no longer save: Save
// compares the mutex key's revision in the same transaction.
type hold struct {
	p       *provider
	s       *settings
	cli     *clientv3.Client
	session *concurrency.Session
	mutex   *concurrency.Mutex
	stop    context.CancelFunc // ends the keepalive

	lost     chan struct{}
	once     sync.Once // release
	mu       sync.Mutex
	lostErr  error
	released bool
}

var _ sdk.LockHold = (*hold)(nil)

// Lock takes the fleet lock req names (the lock_key Info declares): a
// lease of lock_ttl, kept alive while held, and the mutex on it. It waits
// for the machine holding it until ctx ends. The hold ends with Release,
// with ctx, or when the lease is lost.
func (p *provider) Lock(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error) {
	cli, s, err := p.client(ctx)
	if err != nil {
		return nil, err
	}
	if req.Lock.Kind != sdk.LockProvider || req.Lock.Path != s.lockKey {
		return nil, fmt.Errorf("no such lock: %s (this provider holds only provider lock %s)", req.Lock, s.lockKey)
	}
	var lease *clientv3.LeaseGrantResponse
	err = retry(ctx, func() error {
		gctx, cancel := context.WithTimeout(ctx, s.callTimeout)
		defer cancel()
		lease, err = cli.Grant(gctx, int64(s.lockTTL/time.Second))
		return err
	})
	if err != nil {
		return nil, etcdError("take the fleet lock "+s.lockKey+" at", s, err)
	}
	// The keepalive lives until the hold ends, not with ctx's deadline.
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	session, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithContext(kctx))
	if err != nil {
		stop()
		revoke(cli, s, lease.ID)
		return nil, etcdError("take the fleet lock "+s.lockKey+" at", s, err)
	}
	h := &hold{p: p, s: s, cli: cli, session: session, stop: stop, lost: make(chan struct{})}
	h.mutex = concurrency.NewMutex(session, s.lockKey)
	// Taking the mutex again after a member dropped the request is safe:
	// its key is this lease's, so a second try finds its place in line
	// (or takes a new one, if the failed try gave it up).
	if err := retry(ctx, func() error { return h.mutex.Lock(ctx) }); err != nil {
		h.end()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("another machine has held the fleet lock %s for as long as this refresh may wait: %w", s.lockKey, ctx.Err())
		}
		return nil, etcdError("take the fleet lock "+s.lockKey+" at", s, err)
	}
	p.mu.Lock()
	p.held = h
	p.mu.Unlock()
	go h.watch(ctx)
	return h, nil
}

// watch ends the hold with ctx, and marks it lost when the lease goes.
func (h *hold) watch(ctx context.Context) {
	select {
	case <-h.session.Done():
		h.mu.Lock()
		if !h.released {
			h.lostErr = fmt.Errorf("the fleet lock %s was lost: its etcd lease expired (the cluster was out of reach for longer than lock_ttl %s)", h.s.lockKey, h.s.lockTTL)
			close(h.lost)
		}
		h.mu.Unlock()
		h.end()
	case <-ctx.Done():
		h.end()
	}
}

// Lost is closed when the lease behind the lock is gone.
func (h *hold) Lost() <-chan struct{} { return h.lost }

// Err says why the lock was lost; nil while held.
func (h *hold) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lostErr
}

// Release revokes the lease, which deletes the mutex key: the next machine
// in line has the lock at once.
func (h *hold) Release(ctx context.Context) error {
	var err error
	h.once.Do(func() { err = h.release(ctx) })
	return err
}

// end releases the hold in the background's own time (the hold's context
// ended, or the lease was lost).
func (h *hold) end() {
	ctx, cancel := context.WithTimeout(context.Background(), h.s.callTimeout)
	defer cancel()
	h.Release(ctx)
}

func (h *hold) release(ctx context.Context) error {
	h.mu.Lock()
	h.released = true
	h.mu.Unlock()
	h.p.mu.Lock()
	if h.p.held == h {
		h.p.held = nil
	}
	h.p.mu.Unlock()
	h.stop()
	rctx, cancel := context.WithTimeout(ctx, h.s.callTimeout)
	defer cancel()
	if _, err := h.cli.Revoke(rctx, h.session.Lease()); err != nil {
		// The lease expires on its own within lock_ttl.
		return etcdError("release the fleet lock "+h.s.lockKey+" at", h.s, err)
	}
	return nil
}

// retryPause is the pause between tries of a request a member dropped:
// an election after a member stops takes about a second.
const retryPause = 50 * time.Millisecond

// retry runs f until it succeeds, fails for a reason other than a member
// that went away (gRPC Unavailable: the client moves to another), or ctx
// ends.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retryPause):
		}
	}
}

// transient reports an error another try may not get: a member that went
// away mid-request (Unavailable, or Unknown for "raft: stopped" from one
// shutting down), a cluster between leaders (its requests time out on the
// server until a new leader is elected). Refusals (bad credentials, no
// permission, a bad request) and the caller's own deadline are final.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	switch code {
	case codes.Unavailable, codes.Unknown, codes.Internal, codes.Aborted:
		return true
	}
	return false
}

// revoke lets a lease go, best effort: unrevoked, it expires in lock_ttl.
func revoke(cli *clientv3.Client, s *settings, id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), s.callTimeout)
	defer cancel()
	cli.Revoke(ctx, id)
}
