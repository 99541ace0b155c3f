package keychain

import (
	"context"
	"strings"
	"testing"
)

// TestCheckTellsHowClaudeCodeFillsTheItem: with no item, doctor's fix says
// how the item gets a credential (log in to Claude Code, which writes it);
// the keychain provider gives that hint, the shared secretstore does not.
func TestCheckTellsHowClaudeCodeFillsTheItem(t *testing.T) {
	t.Parallel()
	p := configured(t, &fakeStore{}, `{"service": "svc", "account": "acct"}`)
	findings, err := p.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || !strings.Contains(findings[0].Fix, "run `claude`, then /login") {
		t.Errorf("findings %+v; want one whose fix says to run `claude`, then /login", findings)
	}
}
