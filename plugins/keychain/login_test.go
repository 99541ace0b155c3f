package keychain

import (
	"context"
	"strings"
	"testing"

	"github.com/credhost/credhost/sdk/sdktest"
)

// TestCheckTellsHowTheProgramFillsTheItem: with no item, doctor's fix says
// how the item gets a credential in the words the program wiring the
// provider gave (credhost names Claude Code's /login); the shared
// secretstore knows no program.
func TestCheckTellsHowTheProgramFillsTheItem(t *testing.T) {
	t.Parallel()
	const words = "log in (for Claude Code: run `claude`, then /login)"
	p := New(WithStore(&fakeStore{}), WithLoginHint(words))
	sdktest.Configure(t, p, "keychain", `{"service": "svc", "account": "acct"}`)
	findings, err := p.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || !strings.Contains(findings[0].Fix, "run `claude`, then /login") {
		t.Errorf("findings %+v; want one whose fix carries the program's words %q", findings, words)
	}
}
