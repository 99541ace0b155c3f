package sdk

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Credential is one OAuth-style credential as a store holds it.
//
// Its String, GoString and MarshalJSON methods redact the tokens, so a
// Credential handed to a logger or fmt never prints a secret. The wire
// encoding between host and plugin is separate and carries the tokens.
type Credential struct {
	// AccessToken is the bearer token; a usable credential has a non-empty one.
	AccessToken string
	// RefreshToken may be empty: not every store or grant has one.
	RefreshToken string
	// ExpiresAt is when AccessToken stops working; the zero Time means unknown,
	// which the host treats as "assume valid".
	ExpiresAt time.Time
	// Scopes granted to the token, in the store's order.
	Scopes []string
	// Metadata is free-form and round-trips untouched through the host.
	Metadata map[string]string
}

// Fingerprint returns a short, non-reversible tag of the access token (the
// first 12 hex digits of its SHA-256), so two credentials can be told apart
// in output without showing either. It returns "" for an empty token.
func (c Credential) Fingerprint() string { return Fingerprint(c.AccessToken) }

// Fingerprint returns the first 12 hex digits of the SHA-256 of a secret, or
// "" for an empty one. It is what credhost shows where a token would be.
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:6])
}

// Clone returns a deep copy, so a caller may keep or change it freely.
func (c Credential) Clone() Credential {
	c.Scopes = slices.Clone(c.Scopes)
	c.Metadata = maps.Clone(c.Metadata)
	return c
}

// ExpiresIn reports how long the access token has left at now, and whether
// the expiry is known at all.
func (c Credential) ExpiresIn(now time.Time) (time.Duration, bool) {
	if c.ExpiresAt.IsZero() {
		return 0, false
	}
	return c.ExpiresAt.Sub(now), true
}

// String describes the credential without its secrets.
func (c Credential) String() string {
	exp := "unknown"
	if !c.ExpiresAt.IsZero() {
		exp = c.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("Credential{access:%s refresh:%s expires:%s scopes:%d metadata:%d}",
		redacted(c.AccessToken), redacted(c.RefreshToken), exp, len(c.Scopes), len(c.Metadata))
}

// GoString is String: %#v must not print secrets either.
func (c Credential) GoString() string { return c.String() }

// MarshalJSON encodes the credential for logs and diagnostics with the tokens
// replaced by fingerprints. It is not a storage format.
func (c Credential) MarshalJSON() ([]byte, error) {
	var exp *time.Time
	if !c.ExpiresAt.IsZero() {
		t := c.ExpiresAt.UTC()
		exp = &t
	}
	return json.Marshal(struct {
		AccessToken  string            `json:"access_token"`
		RefreshToken string            `json:"refresh_token"`
		ExpiresAt    *time.Time        `json:"expires_at"`
		Scopes       []string          `json:"scopes,omitempty"`
		Metadata     map[string]string `json:"metadata,omitempty"`
	}{redacted(c.AccessToken), redacted(c.RefreshToken), exp, c.Scopes, c.Metadata})
}

func redacted(secret string) string {
	if secret == "" {
		return "none"
	}
	return "sha256:" + Fingerprint(secret)
}
