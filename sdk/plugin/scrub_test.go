package plugin

import (
	"context"
	"strings"
	"testing"

	"github.com/credhost/credhost/sdk"
)

// leakyProvider saves nothing: its Save fails quoting what it was given,
// its Refresh returns fresh, its Check quotes leak.
type leakyProvider struct {
	errProvider
	saveErr error
	fresh   string
	leak    string
}

func (p leakyProvider) Save(context.Context, sdk.Credential) error { return p.saveErr }
func (p leakyProvider) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{AccessToken: p.fresh}, nil
}
func (p leakyProvider) Check(context.Context) ([]sdk.Finding, error) {
	return []sdk.Finding{{Severity: "warning", Message: p.leak, Fix: "forget " + p.fresh}}, nil
}

// TestKnownTokensNeverComeBack: a token the client sent to a plugin (in a
// Save or a Refresh) or got from it (Read, Refresh) is removed, whole or
// in part, from every string the plugin sends back: error messages,
// hints, findings, and what Filter gives the host for its log lines.
func TestKnownTokensNeverComeBack(t *testing.T) {
	t.Parallel()
	const (
		saved   = "saved-access-token-0123456789"
		refresh = "saved-refresh-token-abcdefghij"
		fresh   = "fresh-access-token-ZYXWVUTSRQ"
	)
	leak := "leaks " + saved + " and " + refresh[:14] + " and " + fresh
	p := dialInMemory(t, leakyProvider{
		saveErr: sdk.NotFound("%s", leak).WithHint("line one " + saved),
		fresh:   fresh,
		leak:    leak,
	})
	ctx := context.Background()
	if _, err := p.Refresh(ctx, sdk.Credential{AccessToken: "x", RefreshToken: refresh}); err != nil {
		t.Fatal(err)
	}
	err := p.Save(ctx, sdk.Credential{AccessToken: saved})
	findings, cerr := p.(sdk.Checker).Check(ctx)
	if cerr != nil || len(findings) != 1 {
		t.Fatalf("Check: %v, %v", findings, cerr)
	}
	shown := map[string]string{
		"error":   err.Error(),
		"hint":    sdk.Hint(err),
		"finding": findings[0].Message + " / " + findings[0].Fix,
		"log":     Filter(p)(leak),
	}
	for what, s := range shown {
		for _, part := range []string{"0123456789", "refresh-tok", "ZYXWVUTSRQ"} {
			if strings.Contains(s, part) {
				t.Errorf("%s shows a token: %q", what, s)
			}
		}
		if !strings.Contains(s, redacted) {
			t.Errorf("%s: %q; want [redacted] where the token was", what, s)
		}
	}
	if got := Filter(errProvider{})("plain " + saved); got != "plain "+saved {
		t.Errorf("Filter of a provider that is no plugin client: %q; want Text alone", got)
	}
}

// TestShortValuesAreNotTokens: a value shorter than a token (an empty
// refresh token, "x") is not remembered, so it cannot garble messages.
func TestShortValuesAreNotTokens(t *testing.T) {
	t.Parallel()
	var k knownTokens
	k.add(sdk.Credential{AccessToken: "x", RefreshToken: ""})
	if got := k.text("x marks the spot"); got != "x marks the spot" {
		t.Errorf("got %q", got)
	}
}
