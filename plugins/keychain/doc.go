// Package keychain is the credhost provider for the OS keychain. By default
// it reads and writes the item Claude Code keeps its login in, holding the
// same JSON document as the credentials file (sdk/credjson):
//
//   - macOS: the login Keychain, through /usr/bin/security exactly as the
//     client drives it (security.go says how and why): service "Claude
//     Code-credentials" (with "-" and 8 hex digits of sha256 of the config
//     directory when $CLAUDE_CONFIG_DIR is set), account $USER, the plain
//     JSON document as the item's data. The secret is never a process
//     argument, so a document must fit one `security -i` line: about 1.9 KB.
//   - Linux and other Unix: a Secret Service (gnome-keyring, KeePassXC) over
//     D-Bus (godbus): a read of an unlocked collection takes two round trips
//     (secretservice_read.go), and a locked one, for a read or a save, is
//     unlocked on credhost's own connection (secretservice_unlock.go);
//     writes and odd cases go through zalando/go-keyring. Claude Code
//     itself never uses one there (it keeps its login in the file only),
//     so the embedded default leaves this provider out; configure it for
//     your own items.
//   - Windows: Credential Manager through go-keyring (the wincred provider
//     is the fuller one). Claude Code on Windows keeps its login in the file.
//
// Config:
//
//	service: NAME        default Claude Code's service name (see above)
//	account: NAME        default Claude Code's account: $USER, else the OS
//	                     user name, else "claude-code-user" when the name is
//	                     not [a-zA-Z0-9._-]+
//	format: json|raw     json (default): the credentials document under key;
//	                     raw: the secret is the access token alone
//	key: NAME            default claudeAiOauth (json format)
//	token_prefix: STR    opt-in format check, e.g. "sk-ant-oat01-"
//	timeout: DURATION    bound on one keyring call, default 1s
//
// An unavailable keyring is not a fault: with no session bus, no Secret
// Service, or a locked keychain whose unlock prompt nobody answers, Read
// reports sdk.ErrNotFound with a one-line reason and a hint, within the
// timeout, and the chain moves on. It never starts a D-Bus or keyring daemon:
// without $DBUS_SESSION_BUS_ADDRESS, or with "autolaunch:" there, it does
// not call D-Bus at all (godbus would otherwise autolaunch one through
// dbus-launch). A Secret Service that does not answer within 5 s ends the
// read as unavailable too, so reads nobody waits for any more do not pile up,
// and so does a session bus that does not complete a connection within 5 s
// (one that accepts and never authenticates): reads connect with that
// deadline on a connection of their own, and the process's shared one,
// which go-keyring uses, is made only right after such a connection showed
// the bus answers (sessionbus.go), so later reads are not stuck behind a
// hung connection either.
//
// A locked Secret Service keyring is asked to unlock (a prompt on a
// desktop) at most once per five minutes per process, however many
// keychain entries read or save to it (`credhost serve` re-reads every 2 s): while
// its prompt is open, and for five minutes after it was dismissed, reads
// answer at once as not-found, saying the keyring is locked, and never
// wait for it. Unlocked any other way, the keyring is read at the next
// read, and once a read has found it unlocked, the next time it is locked
// the user is asked again at once (unlockgate.go). credhost shows the
// prompt itself, for reads and saves alike, and waits for it with a
// bound: the wait ends when the Secret Service answers (only its own
// answer counts, not a signal some other program sends), when it exits
// or restarts, when the session bus goes away, or after four minutes;
// ending without an answer, credhost dismisses the prompt. A prompt lost
// some other way holds nothing back past the five minutes. Each prompt's
// signal subscription is removed when it ends, so a serve left running on
// a locked keyring does not grow. What remains unbounded is go-keyring's
// own prompt, which it shows only when it finds the keyring locked after
// credhost saw it unlocked (locked again in between, an item locked on
// its own, a Secret Service that does not tell): go-keyring waits for
// that one with no bound, so only one go-keyring call runs at a time, and
// while one waits the others answer unavailable within 5 s.
//
// Save is read-modify-write in json format (every key it does not own is
// kept) and checks the platform's size limit (macOS: one security line,
// Windows 2560 bytes) before anything is written. Refresh is the OAuth
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
