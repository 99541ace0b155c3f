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
// connection and never answers (a hung or stopped bus, a stale socket
// another program listens on), the read would hang, and so would every
// later one, go-keyring's included, each waiting for that lock. A
// healthy bus answers in milliseconds.
const busConnectTimeout = secretServiceTimeout

// bus is what this package knows of godbus's shared session-bus
// connection: every caller here reaches it through sessionBus.
var bus struct {
	mu      sync.Mutex
	conn    *dbus.Conn  // the shared connection, once sessionBus made it
	attempt *busAttempt // the connection attempt in flight, if any
}

// busAttempt is one attempt to connect, shared by the reads that ask
// while it is in flight.
type busAttempt struct {
	deadline time.Time
	done     chan struct{} // closed when conn and err are set
	conn     *dbus.Conn
	err      error
}

// sessionBus returns godbus's shared session-bus connection, the one
// go-keyring uses too, connecting first if it is not connected, and never
// waiting past busConnectTimeout nor ctx for it. It first checks the
// address (sessionBusAddress: it never starts a bus). To connect, it
// proves the bus answers on a connection of its own, with the deadline
// (dbus.Connect: authentication and Hello), and only then calls
// dbus.SessionBus, which connects the same way without a bound: so
// godbus's lock is never held by a connection to a bus that did not
// answer in time. The reads asking meanwhile share the attempt; once its
// deadline has passed they answer at once, so a bus that stops answering
// between the two connections (the one window left) costs one read the
// bound and the later ones nothing.
func sessionBus(ctx context.Context, lookupEnv func(string) (string, bool)) (*dbus.Conn, error) {
	if err := sessionBusAddress(lookupEnv); err != nil {
		return nil, err
	}
	bus.mu.Lock()
	if c := bus.conn; c != nil && c.Connected() {
		bus.mu.Unlock()
		return c, nil
	}
	a := bus.attempt
	if a == nil {
		addr, _ := lookupEnv("DBUS_SESSION_BUS_ADDRESS")
		a = &busAttempt{deadline: time.Now().Add(busConnectTimeout), done: make(chan struct{})}
		bus.attempt = a
		go a.run(addr)
	}
	bus.mu.Unlock()

	timer := time.NewTimer(time.Until(a.deadline))
	defer timer.Stop()
	select {
	case <-a.done:
		return a.conn, a.err
	case <-timer.C:
	case <-ctx.Done():
	}
	return nil, fmt.Errorf("%w: the D-Bus session bus did not accept a connection within %v", ErrUnavailable, busConnectTimeout)
}

// run makes the attempt: the connection of its own, bounded, then the
// shared one.
func (a *busAttempt) run(addr string) {
	a.err = probeSessionBus(addr, a.deadline)
	if a.err == nil {
		var err error
		if a.conn, err = dbus.SessionBus(); err != nil {
			a.err = fmt.Errorf("%w: cannot reach the D-Bus session bus: %v", ErrUnavailable, err)
		}
	}
	bus.mu.Lock()
	bus.attempt = nil
	if a.err == nil {
		bus.conn = a.conn
	}
	bus.mu.Unlock()
	close(a.done)
}

// probeSessionBus connects to the bus at addr on a connection of its own
// and closes it: nil when authentication and Hello were answered before
// the deadline. At the deadline the connection's context is cancelled,
// which makes godbus close it, ending the wait for the bus's answer.
func probeSessionBus(addr string, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: the D-Bus session bus did not accept a connection within %v", ErrUnavailable, busConnectTimeout)
		}
		return fmt.Errorf("%w: cannot reach the D-Bus session bus: %v", ErrUnavailable, err)
	}
	conn.Close()
	return nil
}
