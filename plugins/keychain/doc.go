// Package keychain is the credhost provider for the OS keychain: the macOS
// Keychain, or a Secret Service (gnome-keyring, KeePassXC) over D-Bus on
// Linux, through zalando/go-keyring. By default it reads the item Claude Code
// writes: service "Claude Code-credentials", account the current user,
// holding the same JSON document as the credentials file (sdk/credjson).
//
// Config:
//
//	service: NAME        default "Claude Code-credentials"
//	account: NAME        default the current user
//	format: json|raw     json (default): the credentials document under key;
//	                     raw: the secret is the access token alone
//	key: NAME            default claudeAiOauth (json format)
//	token_prefix: STR    opt-in format check, e.g. "sk-ant-oat01-"
//	timeout: DURATION    bound on one keyring call, default 1s
//
// An unavailable keyring is not a fault: with no session bus, no Secret
// Service, or a locked collection whose unlock prompt nobody answers, Read
// reports sdk.ErrNotFound with a one-line reason and a hint, within the
// timeout, and the chain moves on. It never starts a D-Bus or keyring daemon:
// without $DBUS_SESSION_BUS_ADDRESS it does not call D-Bus at all (godbus
// would otherwise autolaunch one through dbus-launch).
//
// Save is read-modify-write in json format (every key it does not own is
// kept) and checks the platform's size limit (macOS about 3000 bytes,
// Windows 2560) before anything is written. Refresh is the OAuth
// refresh_token grant (sdk/oauth), in json format when a token_url is set.
// The host serialises refreshes across processes with a flock file keyed
// by service and account in the user's lock directory
// (secretstore.LockDir: $XDG_RUNTIME_DIR/credhost/locks, else a private
// 0700 credhost-UID directory under the temporary directory; never the
// cache directory, which differs between a user's environments). A Save
// waits for the keyring write it started, so the write never lands after
// the lock is released.
//
// A Provider is safe for concurrent use.
package keychain
