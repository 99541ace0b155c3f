package host

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/credhost/credhost/sdk"
)

// ErrNoCredential is matched (errors.Is) by the error Token returns when no
// provider in the chain holds a usable credential.
var ErrNoCredential = errors.New("no credential found")

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

// reason is the error for a person: the operation when it was not a read,
// then the provider's message without the sentinel's own text in front
// ("no credential found: $X is not set" reads "$X is not set" under a
// heading that already says the store is empty).
func (e *ProviderError) reason() string {
	msg := e.Err.Error()
	for _, s := range []error{sdk.ErrNotFound, sdk.ErrUnsupported, sdk.ErrInvalidConfig} {
		if errors.Is(e.Err, s) {
			msg = strings.TrimPrefix(msg, s.Error()+": ")
		}
	}
	if e.Op != "read" {
		msg = e.Op + ": " + msg
	}
	return msg
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
		fmt.Fprintf(&b, "\n  %s (%s): %s", a.Provider, state, a.reason())
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

// hint says what a user can do when the chain came up empty, for this
// platform and the variables this config reads.
func hint(cfg *Config) string {
	var vars []string
	stores := map[string]bool{}
	for _, p := range cfg.Providers {
		switch p.Plugin {
		case "env":
			// Only a name the config file itself spells: a value from
			// ${VAR} may be a secret put there by mistake.
			if v, ok := p.Config["var"].(string); ok && v != "" && !cfg.unexpand.fromEnv(v) {
				vars = append(vars, v)
			}
		case "keychain", "file", "wincred":
			stores[p.Plugin] = true
		}
	}
	var lines []string
	if len(stores) > 0 {
		lines = append(lines, "log in again (for Claude Code: run `claude`, then /login) so a token is stored")
	}
	switch {
	case stores["keychain"] && runtime.GOOS == "darwin":
		lines = append(lines, "if you are logged in, unlock the login keychain: security unlock-keychain")
	case stores["keychain"] && runtime.GOOS != "windows":
		lines = append(lines, "if you use the keychain provider, make sure a Secret Service (e.g. gnome-keyring) runs and is unlocked in this session")
	}
	if stores["wincred"] || (stores["keychain"] && runtime.GOOS == "windows") {
		lines = append(lines, "if you are logged in, check Credential Manager for the stored credential")
	}
	if len(vars) > 0 {
		lines = append(lines, "or set $"+strings.Join(vars, " or $"))
	}
	lines = append(lines, "run `credhost status` to see each provider")
	return "to fix: " + strings.Join(lines, "\n  ")
}
