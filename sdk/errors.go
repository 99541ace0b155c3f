package sdk

import (
	"errors"
	"fmt"
	"strings"
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

// Error is a provider's error that matches one of the sentinels above with
// errors.Is while its text is the reason alone ("$TOKEN is not set", not
// "no credential found: $TOKEN is not set"): the host already says what
// kind of failure it is. NotFound, Unsupported and InvalidConfig build
// one; WithHint adds what the user can do about it. Both the kind and the
// hint cross the plugin boundary.
type Error struct {
	kind error
	err  error
	hint string
}

// NotFound is an error matching ErrNotFound whose text is the reason,
// formatted as by fmt.Errorf (so %w wraps a cause).
func NotFound(format string, args ...any) *Error { return newError(ErrNotFound, format, args) }

// Unsupported is an error matching ErrUnsupported whose text is the reason.
func Unsupported(format string, args ...any) *Error {
	return newError(ErrUnsupported, format, args)
}

// InvalidConfig is an error matching ErrInvalidConfig whose text is the
// reason; name the key.
func InvalidConfig(format string, args ...any) *Error {
	return newError(ErrInvalidConfig, format, args)
}

func newError(kind error, format string, args []any) *Error {
	return &Error{kind: kind, err: fmt.Errorf(format, args...)}
}

// WithHint returns a copy of e that tells the user what to do, one line per
// thing to try (a store that is empty: how to log in; a variable that is
// not set: set it). The host gathers the hints of every provider it tried
// into the advice that ends its error, so it needs no knowledge of any
// plugin. Empty lines are dropped.
func (e *Error) WithHint(lines ...string) *Error {
	c := *e
	var kept []string
	if c.hint != "" {
		kept = append(kept, c.hint)
	}
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			kept = append(kept, l)
		}
	}
	c.hint = strings.Join(kept, "\n")
	return &c
}

// Error returns the reason.
func (e *Error) Error() string { return e.err.Error() }

// Is matches the sentinel e was built as.
func (e *Error) Is(target error) bool { return target == e.kind }

// Unwrap returns the reason as formatted, so a cause wrapped with %w
// matches too.
func (e *Error) Unwrap() error { return e.err }

// Hint returns what the user can do, one line per thing to try; "" when
// the provider did not say.
func (e *Error) Hint() string { return e.hint }

// hinter is implemented by errors that carry a hint: *Error, and an error
// that came back from a plugin process with one.
type hinter interface{ Hint() string }

// Hint returns the hint carried by err or anything it wraps (any error with
// a method Hint() string), or "". Its lines are what the user can do.
func Hint(err error) string {
	var h hinter
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}
