//go:build !darwin && !windows

package keychain

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// secretServiceName is the well-known bus name of a Secret Service.
const secretServiceName = "org.freedesktop.secrets"

// available checks, without starting anything, that a Secret Service is
// running on the session bus:
//   - with no session bus address to connect to (sessionBusAddress) it
//     does not call D-Bus at all: godbus would autolaunch a bus through
//     dbus-launch;
//   - it asks the bus whether the Secret Service name has an owner
//     (NameHasOwner), because calling the name would make the bus activate
//     gnome-keyring-daemon from its .service file.
//
// It asks on godbus's shared connection (sharedBus), the one go-keyring
// uses next, which it connects first if need be. Connecting and asking
// are bounded by secretServiceTimeout.
func available(lookupEnv func(string) (string, bool)) error {
	ctx, cancel := context.WithTimeout(context.Background(), secretServiceTimeout)
	defer cancel()
	conn, err := sharedBus.get(ctx, lookupEnv)
	if err != nil {
		return err
	}
	var running bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, secretServiceName).Store(&running); err != nil {
		return fmt.Errorf("%w: cannot ask the session bus for a Secret Service: %v", ErrUnavailable, err)
	}
	if !running {
		return fmt.Errorf("%w: no Secret Service is running on the session bus", ErrUnavailable)
	}
	return nil
}

// sessionBusAddress checks, before anything connects, that
// $DBUS_SESSION_BUS_ADDRESS names a running session bus: unset, empty, or
// "autolaunch:" (which asks the client to start a bus), godbus would run
// dbus-launch, which leaves a dbus-daemon running after credhost exits.
// Every connection asks it first (busConn.get), so neither available nor
// quickGet ever starts one.
func sessionBusAddress(lookupEnv func(string) (string, bool)) error {
	addr, ok := lookupEnv("DBUS_SESSION_BUS_ADDRESS")
	switch {
	case !ok || addr == "":
		return fmt.Errorf("%w: no D-Bus session bus ($DBUS_SESSION_BUS_ADDRESS is not set)", ErrUnavailable)
	case strings.HasPrefix(addr, "autolaunch:"):
		return fmt.Errorf("%w: no D-Bus session bus ($DBUS_SESSION_BUS_ADDRESS is %q, which would start a D-Bus daemon through dbus-launch)", ErrUnavailable, addr)
	}
	return nil
}

// unlockCooldown is how long a process waits, after asking a locked
// keyring to unlock in vain (the user dismissed or failed the prompt),
// before it asks again (see unlockGate). Five minutes: a serve that
// re-reads every 2 s would otherwise prompt 150 times in that span, and
// a user who dismissed the prompt on purpose sees it at most twelve times
// an hour even if they never answer; one who dismissed it by mistake, or
// comes back to the desk, is asked again within minutes. Nobody has to
// wait it out: a keyring unlocked any other way (the desktop's login,
// Seahorse, KeePassXC) is read at the next read.
const unlockCooldown = 5 * time.Minute

// sizeLimit: the Secret Service has no documented limit.
func sizeLimit(service, account string) (int, string) { return 0, "" }

func hint() string {
	return "to use the keychain, run a Secret Service (gnome-keyring, KeePassXC) in this session and unlock it; otherwise the chain goes on without it"
}

// missingHint: a Secret Service that answers has no item to unlock.
func missingHint() string { return "" }
