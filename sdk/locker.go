package sdk

import "context"

// Locker is an optional interface a Provider implements to hold a lock
// itself: a LockProvider lock declared in Info.Locks, such as a lease-based
// mutex in a distributed store that a fleet of machines sharing one login
// must take before it refreshes. No file lock on one machine can stop two
// machines from presenting the same refresh token; a lock in the store
// they share can. The host finds Locker by type assertion (and across the
// plugin boundary through the Lock stream), and never imports the store's
// client.
//
// The host takes a LockProvider lock in its place among the store's locks
// (scope and order as for any Lock), holds it around re-read, token
// request and save, then releases it. Acquiring it is bounded by the
// host's refresh.timeout: when the lock cannot be had (the store is
// unreachable, another machine holds it for too long), the host refreshes
// nothing and serves the token it has, degraded, with the error's text as
// the reason.
type Locker interface {
	// Lock acquires the lock req names and returns once it is held, or
	// with an error when it cannot be had before ctx ends (wrap ctx.Err()
	// then, so the host can say it timed out) or at all (store
	// unreachable, permission denied: say which). ctx is also the hold's
	// lifetime: once Lock has returned a LockHold, the lock stays held
	// until Release is called or ctx ends, whichever comes first, and the
	// provider must let it go then on its own.
	//
	// What "held" guarantees: while the hold is not lost, no other holder
	// of the same lock (on any machine, through any credhost) holds it.
	// It must never outlive its holder for long: the lock must be
	// released, or expire within a bound the provider documents (an etcd
	// lease's TTL), when the process that asked for it dies. Across the
	// plugin boundary this comes for free: the lock is held for as long
	// as the Lock stream stays open, and a host that dies closes it.
	// When the plugin process itself dies, only the store can release
	// the lock, so use a lease (etcd, Consul sessions) or a key with a
	// time to live (Redis), kept alive while held.
	Lock(ctx context.Context, req LockRequest) (LockHold, error)
}

// LockRequest names the lock a Locker is asked for.
type LockRequest struct {
	// Lock is the lock as the provider declared it in Info.Locks: Kind
	// LockProvider, Path its name.
	Lock Lock
}

// LockHold is a lock a Locker holds for the host.
//
// A lock can be lost while held: a lease that expired because the store
// was unreachable for longer than its TTL, a session the store closed.
// Then another holder may already have it. The provider says so through
// Lost; the host refreshes nothing once the lock is lost, and does not
// save blindly a token it refreshed under a lock lost before the save
// (it re-reads the store first and never overwrites a credential another
// holder saved). Since the loss can happen between that check and the
// write, a store that can be lost under its lock should make Save a
// compare-and-swap on the version Read saw (etcd's ModRevision, Consul's
// ModifyIndex): that is the last guard against overwriting a newer
// credential, and only the store can give it.
type LockHold interface {
	// Lost returns a channel that is closed when the provider knows the
	// lock is no longer held by this hold (lease expired, session gone,
	// connection to the store lost for longer than the lease). It is never
	// closed by Release or by the end of Lock's context.
	Lost() <-chan struct{}
	// Err says why the lock was lost, naming the lock and never a secret;
	// nil while it is held (and after a plain Release).
	Err() error
	// Release lets the lock go and returns once it has, or when ctx ends;
	// after that the provider still lets it go (or lets it expire) on its
	// own. Calling it again does nothing.
	Release(ctx context.Context) error
}
