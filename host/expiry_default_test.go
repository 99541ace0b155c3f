package host

import (
	"context"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// privateRefresher is a provider that refreshes without sdk/oauth and
// returns no expiry, as a private token service may.
type privateRefresher struct{}

func (privateRefresher) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "private", CanSave: true, CanRefresh: true}, nil
}
func (privateRefresher) Configure(context.Context, sdk.ConfigureRequest) error { return nil }
func (privateRefresher) Read(context.Context) (sdk.Credential, error) {
	return sdk.Credential{AccessToken: "old", RefreshToken: "rt", ExpiresAt: testNow.Add(-time.Minute)}, nil
}
func (privateRefresher) Save(context.Context, sdk.Credential) error { return nil }
func (privateRefresher) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{AccessToken: "new"}, nil
}

// TestDefaultExpiresInIsTheHosts: the host, not a helper a provider may
// or may not use, gives a refreshed credential without an expiry
// now+default_expires_in, whichever provider refreshed it.
func TestDefaultExpiresInIsTheHosts(t *testing.T) {
	t.Parallel()
	cfg := testConfig(false, "private")
	cfg.OAuth.DefaultExpiresIn = Duration(8 * time.Hour)
	h, err := New(cfg, WithBuiltins(map[string]Builtin{"private": {New: func() sdk.Provider { return privateRefresher{} }}}), WithNow(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	res, err := h.Token(context.Background())
	if err != nil || !res.Refreshed || !res.Credential.ExpiresAt.Equal(testNow.Add(8*time.Hour)) {
		t.Fatalf("Token: %v, refreshed %v, expires %v; want a refresh expiring at now+8h", err, res.Refreshed, res.Credential.ExpiresAt)
	}
}
