package secretstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/secretstore"
)

// TestCheckShowsTheCallersLoginHint: when the item holds no credential,
// doctor's fix is the login hint the provider gave in its Spec; the shared
// helper itself names no program (no `claude`, no /login) when given none.
func TestCheckShowsTheCallersLoginHint(t *testing.T) {
	t.Parallel()
	doc := `{"other": {"accessToken": "x"}}` // a document without the credential's key
	tests := map[string]struct {
		login  string
		secret *string // nil: no item at all
		want   string  // the fix shown; "" means any fix naming no program
	}{
		"no item, the caller's hint":       {login: "sign in with corp-cli", want: "sign in with corp-cli"},
		"no credential, the caller's hint": {login: "sign in with corp-cli", secret: &doc, want: "sign in with corp-cli"},
		"no item, no hint given":           {},
		"no credential, no hint given":     {secret: &doc},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			it, err := secretstore.NewItem(secretstore.Spec{Provider: "p", Describe: "test item", Backend: &memBackend{secret: tc.secret}, Login: tc.login}, secretstore.Options{}, sdk.OAuthConfig{})
			if err != nil {
				t.Fatal(err)
			}
			findings := it.Check(context.Background())
			if len(findings) != 1 || findings[0].Severity != sdk.SeverityWarning {
				t.Fatalf("findings %+v; want one warning", findings)
			}
			fix := findings[0].Fix
			switch {
			case tc.want != "" && fix != tc.want:
				t.Errorf("fix %q; want the caller's %q", fix, tc.want)
			case tc.want == "" && (fix == "" || strings.Contains(fix, "claude") || strings.Contains(fix, "/login")):
				t.Errorf("fix %q; want a generic login hint naming no program", fix)
			}
		})
	}
}
