package sdk

import (
	"errors"
	"time"
)

// Sentinel errors a provider returns (or wraps with %w) and the host branches
// on with errors.Is. Each crosses the plugin boundary as a gRPC status code
// and comes back as the same sentinel; see credhost.proto.
var (
	// ErrNotFound means the store holds no credential: not a fault, the host
	// moves on to the next provider.
	ErrNotFound = errors.New("no credential found")
	// ErrUnsupported means the provider cannot do the operation at all (an
	// environment variable cannot be saved to).
	ErrUnsupported = errors.New("operation not supported")
	// ErrInvalidConfig means the provider's config block is wrong; the message
	// names the key.
	ErrInvalidConfig = errors.New("invalid provider config")
	// ErrInvalidGrant means the token endpoint rejected the refresh token
	// (OAuth error invalid_grant): the user must log in again unless another
	// process has stored a newer one.
	ErrInvalidGrant = errors.New("refresh token rejected")
)

// RetryDelayer is implemented by errors that carry a server's request to
// wait (HTTP Retry-After on 429 or 503). The delay crosses the plugin
// boundary, so the host can hold off instead of hammering the endpoint.
type RetryDelayer interface {
	RetryDelay() time.Duration
}

// RetryDelay returns the delay carried by err or anything it wraps, or 0.
func RetryDelay(err error) time.Duration {
	var rd RetryDelayer
	if errors.As(err, &rd) {
		return rd.RetryDelay()
	}
	return 0
}
