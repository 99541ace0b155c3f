package sdk

import (
	"context"
	"encoding/json"
	"time"
)

// Provider is one credential store. The host calls Configure once, then Read,
// Save and Refresh as its rules require, possibly concurrently.
type Provider interface {
	// Info describes the provider; it may be called before Configure.
	Info(ctx context.Context) (Info, error)
	// Configure receives the provider's config block and the shared OAuth
	// settings. A bad block is an error wrapping ErrInvalidConfig that names
	// the key.
	Configure(ctx context.Context, req ConfigureRequest) error
	// Read returns the stored credential, or an error wrapping ErrNotFound
	// when the store holds none.
	Read(ctx context.Context) (Credential, error)
	// Save persists cred; read-only stores return ErrUnsupported.
	Save(ctx context.Context, cred Credential) error
	// Refresh obtains a fresh credential from cred (typically an OAuth
	// refresh_token grant) without saving it: the host saves. Providers that
	// cannot refresh return ErrUnsupported.
	Refresh(ctx context.Context, cred Credential) (Credential, error)
}

// Info describes a provider to the host and to `credhost status`.
type Info struct {
	// Name is the plugin's own name ("file", "corp-sts").
	Name string
	// Version is the plugin's version, free-form.
	Version string
	// CanSave reports whether Save can succeed.
	CanSave bool
	// CanRefresh reports whether Refresh can succeed.
	CanRefresh bool
	// Locks are the cross-process locks the host holds around this store's
	// refresh, so processes on one machine (credhost's and another
	// program's that shares the store) refresh it one at a time: with
	// refresh-token rotation a second refresh of the same token revokes
	// the whole family. The host takes them in the order listed (see
	// Lock); empty means no cross-process lock (read-only stores).
	Locks []Lock
	// LockPath is the single flock file of earlier SDKs.
	//
	// Deprecated: declare Locks. A non-empty LockPath with no Locks is
	// still honoured as Lock{Kind: LockFlock, Path: LockPath, Scope:
	// LockScopeRefresh}, so a plugin built before Locks keeps its lock.
	LockPath string
}

// LockKind says how a Lock is taken.
type LockKind string

const (
	// LockFlock is credhost's own lock: an advisory flock(2) on a regular
	// file (LockFileEx on Windows), created 0600 and never deleted. The
	// kernel releases it when its holder dies, so it never goes stale.
	LockFlock LockKind = "flock"
	// LockDir is a directory lock taken exactly as the npm package
	// proper-lockfile (4.1.2) takes it, so credhost and a Node program
	// (Claude Code) exclude each other: mkdir Path (atomic; EEXIST means
	// held); while held, its mtime is refreshed every Stale/2 (at least
	// 1 s); a lock whose mtime is older than Stale is stale (its holder
	// died), is removed and taken again; release is rmdir.
	LockDir LockKind = "dir"
	// LockProvider is a lock the provider holds itself: a distributed
	// store's lease, such as an etcd mutex shared by a fleet of machines,
	// which no file on this machine can stand for. The host takes it
	// through the provider's Locker (across the plugin boundary, a Lock
	// stream that holds it while open), in order with the other locks;
	// Path names the lock to the provider and is not a file. A store that
	// declares it but does not implement Locker is not refreshed (the
	// refresh degrades with a message saying so), never refreshed without
	// it.
	LockProvider LockKind = "provider"
)

// LockScope says what a Lock is held around.
type LockScope string

const (
	// LockScopeRefresh holds the lock over the whole refresh: re-read,
	// token request, save. It is the default (the empty scope).
	LockScopeRefresh LockScope = "refresh"
	// LockScopeSave holds the lock around the save only, inside the
	// refresh locks (Claude Code's .storage-write.lock, which it takes around
	// every write of its credentials).
	LockScopeSave LockScope = "save"
)

// DefaultLockStale is proper-lockfile's default stale time, used for a
// LockDir whose Stale is zero.
const DefaultLockStale = 10 * time.Second

// Lock is one cross-process lock a store needs, declared in Info.Locks.
//
// Order: the host takes the LockScopeRefresh locks in the order listed
// before it re-reads the store, then the LockScopeSave locks in the order
// listed right before the save, and releases them in the reverse order.
// A store shared with another program lists that program's locks in the
// order the program takes them, so neither waits for a lock the other
// holds while holding one it wants (no deadlock). Every lock is bounded by
// the host's refresh.timeout: a lock not obtained by then fails the
// refresh (degraded), naming the lock.
//
// Safety: for the file kinds, the host opens lock paths without following
// a symlink and without blocking (a named pipe planted there cannot hang
// it), and accepts only a regular file (LockFlock) or a real directory
// (LockDir) owned by the user running it; anything else fails the refresh
// with a message naming the path.
type Lock struct {
	// Kind is how the lock is taken.
	Kind LockKind
	// Path is the lock file or directory (absolute). For LockProvider it
	// is the lock's name as the provider understands it (an etcd key, a
	// Consul session key), passed back to Locker.Lock and shown in
	// messages: never a secret.
	Path string
	// Stale is, for LockDir, the age of the mtime after which a lock is
	// taken to be abandoned; zero means DefaultLockStale. The host
	// refreshes the mtime of a held LockDir every Stale/2 (at least 1 s).
	Stale time.Duration
	// Scope is what the lock is held around; empty is LockScopeRefresh.
	Scope LockScope
}

// String describes l for messages, e.g. `dir lock /home/u/.claude.lock`.
func (l Lock) String() string {
	return string(l.Kind) + " lock " + l.Path
}

// ConfigureRequest carries a provider's configuration from the host.
type ConfigureRequest struct {
	// Name is the provider's name in the host's config, for messages.
	Name string
	// Config is the provider's `config:` block as a JSON object (never nil
	// once it has crossed the wire; "{}" when the block is absent).
	Config json.RawMessage
	// OAuth is the shared `oauth:` block, for providers that refresh.
	OAuth OAuthConfig
}

// DecodeConfig decodes the config block into v strictly: an unknown key is
// an error wrapping ErrInvalidConfig that names it.
func (r ConfigureRequest) DecodeConfig(v any) error {
	if err := decodeStrict(r.Config, v); err != nil {
		return InvalidConfig("provider %q: %v", r.Name, err)
	}
	return nil
}

// OAuthConfig is the shared OAuth client configuration a refreshing provider
// uses for the refresh_token grant.
type OAuthConfig struct {
	// TokenURL is the token endpoint.
	TokenURL string
	// ClientID is the public client id sent with the grant.
	ClientID string
	// DefaultExpiresIn is the lifetime the host gives a refreshed
	// credential that has no expiry (a token response without
	// expires_in). The host applies it to every provider's Refresh
	// result; a provider need not.
	DefaultExpiresIn time.Duration
	// BodyFormat is "form" (RFC 6749, the default) or "json".
	BodyFormat string
	// Scopes, when set, are requested with the grant.
	Scopes []string
	// ClientIDMetadata names a Credential.Metadata key (e.g. "clientId")
	// whose non-empty value replaces ClientID for that credential: a login
	// made by another OAuth client must be refreshed as that client. Such a
	// credential is refreshed with its own stored scopes (Scopes when it has
	// none), since the default scopes belong to the default client.
	ClientIDMetadata string
	// KeepScopes lists stored scopes that are requested again, after Scopes,
	// when the credential holds them (scopes a login added that the default
	// list lacks); the others are dropped.
	KeepScopes []string
	// Timeout bounds one token request; zero means the provider's default.
	Timeout time.Duration
}

// Checker is an optional interface a Provider implements to report problems
// with its store for `credhost doctor`: a credentials file readable by
// others, an unreachable keyring. The host finds it by type assertion (and
// across the plugin boundary through the Check call).
type Checker interface {
	Check(ctx context.Context) ([]Finding, error)
}

// Severities of a Finding.
const (
	SeverityOK      = "ok"
	SeverityWarning = "warning"
	SeverityError   = "error"
)

// Finding is one result of a Check. It never holds a secret.
type Finding struct {
	// Severity is SeverityOK, SeverityWarning or SeverityError.
	Severity string
	// Message says what was found.
	Message string
	// Fix says what to do; empty when nothing needs doing.
	Fix string
}
