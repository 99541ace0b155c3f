//go:build !darwin && !windows

package keychain

import (
	"context"
	"fmt"
	"sync"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

// busConnectTimeout bounds connecting to the session bus (authentication
// and Hello). godbus's dbus.SessionBus connects with no bound while it
// holds its process-wide session-bus lock: on an address that accepts the
// connection and never answers (a hung or stopped bus, one out of file
// descriptors, a stale socket another program listens on), a read would
// hang, and so would every later one, go-keyring's included, each waiting
// for that lock. A healthy bus answers in milliseconds.
const busConnectTimeout = secretServiceTimeout

// The process's two session-bus connections:
//   - quickBus, quickGet's and unlockPrompt's own, made with the deadline
//     (dial, connect): reads, and unlocking a locked keyring, never touch
//     godbus's lock, and each prompt's signal channel and match rules are
//     removed there once it ended;
//   - sharedBus, godbus's shared connection (dbus.SessionBus), which
//     go-keyring uses and so must be connected before go-keyring is
//     called (available does). dbus.SessionBus is called only once a
//     connection of our own has just been made within the deadline
//     (probe), so godbus's lock is not held by a connection to a bus that
//     did not answer in time.
var (
	quickBus  = busConn{connect: dial}
	sharedBus = busConn{connect: probeThenShare}
)

// busConn is one session-bus connection, connected when first asked for
// and again after it dropped.
type busConn struct {
	connect func(addr string, deadline time.Time) (*dbus.Conn, error)

	mu      sync.Mutex
	conn    *dbus.Conn  // once connected
	attempt *busAttempt // the connection attempt in flight, if any
}

// busAttempt is one attempt to connect, shared by the callers that ask
// while it is in flight.
type busAttempt struct {
	deadline time.Time
	done     chan struct{} // closed when conn and err are set
	conn     *dbus.Conn
	err      error
}

// errBusTimeout is the answer when connecting took longer than
// busConnectTimeout.
var errBusTimeout = fmt.Errorf("%w: the D-Bus session bus did not accept a connection within %v", ErrUnavailable, busConnectTimeout)

// get returns the connection, connecting first if it is not connected,
// and never waits past busConnectTimeout nor ctx. It first checks the
// address (sessionBusAddress: it never starts a bus). Callers asking
// while an attempt is in flight share it; once its deadline has passed
// they answer at once, so an attempt stuck past it (only dbus.SessionBus
// can be) costs one caller the bound and the later ones nothing.
func (b *busConn) get(ctx context.Context, lookupEnv func(string) (string, bool)) (*dbus.Conn, error) {
	if err := sessionBusAddress(lookupEnv); err != nil {
		return nil, err
	}
	b.mu.Lock()
	if c := b.conn; c != nil && c.Connected() {
		b.mu.Unlock()
		return c, nil
	}
	a := b.attempt
	if a == nil {
		addr, _ := lookupEnv("DBUS_SESSION_BUS_ADDRESS")
		a = &busAttempt{deadline: time.Now().Add(busConnectTimeout), done: make(chan struct{})}
		b.attempt = a
		go b.run(a, addr)
	}
	b.mu.Unlock()

	timer := time.NewTimer(time.Until(a.deadline))
	defer timer.Stop()
	select {
	case <-a.done:
		return a.conn, a.err
	case <-timer.C:
	case <-ctx.Done():
	}
	return nil, errBusTimeout
}

// run makes the attempt a.
func (b *busConn) run(a *busAttempt, addr string) {
	a.conn, a.err = b.connect(addr, a.deadline)
	b.mu.Lock()
	b.attempt = nil
	if a.err == nil {
		b.conn = a.conn
	}
	b.mu.Unlock()
	close(a.done)
}

// dial makes a connection of its own to the bus at addr: authenticated
// and past Hello before the deadline, or none. At the deadline the
// connection's context is cancelled, which makes godbus close it, ending
// the wait for the bus's answer.
func dial(addr string, deadline time.Time) (*dbus.Conn, error) {
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(time.Until(deadline), cancel)
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if !timer.Stop() { // the deadline came first: the connection is closed
		if err == nil {
			conn.Close()
		}
		return nil, errBusTimeout
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: cannot reach the D-Bus session bus: %v", ErrUnavailable, err)
	}
	return conn, nil // cancelled only when the connection is closed
}

// probeThenShare returns godbus's shared connection, once a connection of
// its own to addr, made with the deadline, showed that the bus answers.
func probeThenShare(addr string, deadline time.Time) (*dbus.Conn, error) {
	probe, err := dial(addr, deadline)
	if err != nil {
		return nil, err
	}
	probe.Close()
	conn, err := dbus.SessionBus()
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach the D-Bus session bus: %v", ErrUnavailable, err)
	}
	return conn, nil
}
