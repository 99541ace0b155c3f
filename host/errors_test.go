package host

import (
	"errors"
	"strings"
	"testing"

	"github.com/credhost/credhost/sdk"
)

// TestNoCredentialHasItsOwnMessage: the chain's failure does not read like
// one provider's empty store.
func TestNoCredentialHasItsOwnMessage(t *testing.T) {
	t.Parallel()
	if ErrNoCredential.Error() == sdk.ErrNotFound.Error() {
		t.Errorf("ErrNoCredential reads %q, as sdk.ErrNotFound does", ErrNoCredential)
	}
}

// TestChainErrorEndsWithEachProvidersHint: the advice is what the providers
// said, in chain order, each line once, without knowing any plugin; a line
// that quotes a value ${VAR} expansion put into the config is left out.
func TestChainErrorEndsWithEachProvidersHint(t *testing.T) {
	t.Parallel()
	u := newUnexpander([]expansion{{raw: "${WHICH}", value: "PASTED_SECRET"}})
	attempts := []*ProviderError{
		{Provider: "a", Op: "read", Err: sdk.NotFound("$A is not set").WithHint("set $A")},
		{Provider: "b", Op: "read", Err: sdk.NotFound("$PASTED_SECRET is not set").WithHint("set $PASTED_SECRET")},
		{Provider: "c", Op: "read", Err: errors.New("broken")},
		{Provider: "d", Op: "read", Err: sdk.NotFound("no item").WithHint("log in", "unlock the store")},
		{Provider: "e", Op: "read", Err: sdk.NotFound("no file").WithHint("log in")},
	}
	err := &ChainError{Attempts: attempts, Hint: chainHint(attempts, u)}
	want := "to fix: set $A\n  log in\n  unlock the store\n  run `credhost status` to see each provider"
	if !strings.HasSuffix(err.Error(), "\n"+want) {
		t.Errorf("chain error:\n%s\nwant it to end with:\n%s", err, want)
	}
	if strings.Contains(err.Hint, "PASTED_SECRET") {
		t.Errorf("the hint quotes a value from the environment: %q", err.Hint)
	}
	if !strings.Contains(err.Error(), "\n  a (empty): $A is not set\n") {
		t.Errorf("chain error does not give a's reason alone:\n%s", err)
	}
}
