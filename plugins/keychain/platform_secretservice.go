//go:build !darwin && !windows

package keychain

import "fmt"

// available refuses to touch D-Bus without a session bus address: godbus
// would otherwise autolaunch a bus through dbus-launch, leaving a daemon
// behind for a process that only wanted to look up a token.
func available(lookupEnv func(string) (string, bool)) error {
	if addr, ok := lookupEnv("DBUS_SESSION_BUS_ADDRESS"); !ok || addr == "" {
		return fmt.Errorf("%w: no D-Bus session bus ($DBUS_SESSION_BUS_ADDRESS is not set)", ErrUnavailable)
	}
	return nil
}

// sizeLimit: the Secret Service has no documented limit.
func sizeLimit(service, account string) (int, string) { return 0, "" }

func hint() string {
	return "to use the keychain, run a Secret Service (gnome-keyring, KeePassXC) in this session and unlock it; otherwise the chain goes on without it"
}
