package host

import (
	"errors"
	"fmt"
	"strings"

	"github.com/credhost/credhost/sdk"
)

// ErrNoCredential is matched (errors.Is) by the error Token returns when no
// provider in the chain holds a usable credential.
var ErrNoCredential = errors.New("no provider in the chain yielded a credential")

// ErrClosed is returned by a Host's calls that would walk the chain, start
// a plugin or refresh once Close has begun: a closed host starts no plugin
// and refreshes nothing.
var ErrClosed = errors.New("the host is closed")

// ErrRefreshFailed is wrapped by Refresh's error when a forced refresh was
// impossible or failed (the CLI's exit code 3).
var ErrRefreshFailed = errors.New("refresh failed")

// ProviderError is a failure of one provider in one operation.
type ProviderError struct {
	// Provider is the provider's name in the config.
	Provider string
	// Op is what failed: "start", "configure", "read", "save", "refresh".
	Op string
	// Err is the cause; it never carries a secret.
	Err error
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("provider %q: %s: %v", e.Provider, e.Op, e.Err)
}

// Unwrap returns the cause, so sentinels like sdk.ErrNotFound match.
func (e *ProviderError) Unwrap() error { return e.Err }

// providerErr is m's failure in op.
func providerErr(m *member, op string, err error) *ProviderError {
	return &ProviderError{Provider: m.cfg.Name, Op: op, Err: err}
}

// reason is the error for a person: the operation when it was not a read,
// then the provider's message. A provider's sdk.NotFound and its kin say
// the reason alone, under a heading that already says the store is empty.
func (e *ProviderError) reason() string {
	if e.Op != "read" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Err.Error()
}

// ChainError says that no provider yielded a credential: it holds every
// provider's reason, in chain order, and what the user can do about it.
type ChainError struct {
	// Attempts holds one *ProviderError per provider, in chain order.
	Attempts []*ProviderError
	// Hint tells the user what to do next.
	Hint string
}

func (e *ChainError) Error() string {
	var b strings.Builder
	b.WriteString("no credential found; every provider was tried:")
	for _, a := range e.Attempts {
		state := "empty"
		if !errors.Is(a.Err, sdk.ErrNotFound) {
			state = "error"
		}
		// A reason of several lines (a start error quoting a plugin)
		// stays under its provider.
		fmt.Fprintf(&b, "\n  %s (%s): %s", a.Provider, state, strings.ReplaceAll(a.reason(), "\n", "\n    "))
	}
	if e.Hint != "" {
		b.WriteString("\n")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNoCredential) true.
func (e *ChainError) Is(target error) bool { return target == ErrNoCredential }

// Unwrap returns every attempt's error.
func (e *ChainError) Unwrap() []error {
	errs := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		errs[i] = a
	}
	return errs
}

// chainHint says what a user can do when the chain came up empty: the hint
// each provider's error carried (sdk.Hint: set the variable, log in, unlock
// the keychain), in chain order, each line once, then where to look
// further. The host knows no plugin: what to do about a store is its
// provider's to say. A line that quotes a value ${VAR} expansion put into
// the config is left out: that value may be a secret put there by mistake.
func chainHint(attempts []*ProviderError, u unexpander) string {
	var lines []string
	seen := map[string]bool{}
	for _, a := range attempts {
		for _, l := range strings.Split(sdk.Hint(a.Err), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || seen[l] || u.apply(l) != l {
				continue
			}
			seen[l] = true
			lines = append(lines, l)
		}
	}
	lines = append(lines, "run `credhost status` to see each provider")
	return "to fix: " + strings.Join(lines, "\n  ")
}
