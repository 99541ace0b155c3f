package sdk

import (
	"context"
	"encoding/json"
	"fmt"
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
	// LockPath names a file the host locks (flock; never deleted) around
	// read, refresh and save, so processes on one machine refresh this store
	// one at a time: with refresh-token rotation a second refresh of the
	// same token revokes the whole family. A file store uses "<path>.lock";
	// empty means no cross-process lock (read-only stores).
	LockPath string
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
		return fmt.Errorf("%w: provider %q: %v", ErrInvalidConfig, r.Name, err)
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
	// DefaultExpiresIn applies when a token response has no expires_in.
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
