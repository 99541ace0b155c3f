package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	plugin "github.com/hashicorp/go-plugin"
)

// errProvider returns err from every call; the table below sends each
// sentinel across a real gRPC connection and checks it comes back.
type errProvider struct{ err error }

func (p errProvider) Info(context.Context) (Info, error)                { return Info{}, p.err }
func (p errProvider) Configure(context.Context, ConfigureRequest) error { return p.err }
func (p errProvider) Read(context.Context) (Credential, error)          { return Credential{}, p.err }
func (p errProvider) Save(context.Context, Credential) error            { return p.err }
func (p errProvider) Refresh(context.Context, Credential) (Credential, error) {
	return Credential{}, p.err
}

func dialInMemory(t *testing.T, impl Provider) Provider {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &GRPCPlugin{Impl: impl}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(Provider)
}

func TestSentinelsSurviveTheWire(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err      error
		sentinel error // nil: must match none of the sentinels
	}{
		"not found":         {fmt.Errorf("%w: no file at /x", ErrNotFound), ErrNotFound},
		"unsupported":       {fmt.Errorf("%w: env is read-only", ErrUnsupported), ErrUnsupported},
		"invalid config":    {fmt.Errorf("%w: unknown key \"pth\"", ErrInvalidConfig), ErrInvalidConfig},
		"invalid grant":     {fmt.Errorf("%w: log in again", ErrInvalidGrant), ErrInvalidGrant},
		"bare sentinel":     {ErrNotFound, ErrNotFound},
		"deadline":          {fmt.Errorf("keychain: %w", context.DeadlineExceeded), context.DeadlineExceeded},
		"plain fault":       {errors.New("disk on fire"), nil},
		"doubly wrapped":    {fmt.Errorf("outer: %w", fmt.Errorf("%w: inner", ErrUnsupported)), ErrUnsupported},
		"fault mentions it": {errors.New("not found in PATH"), nil},
	}
	sentinels := []error{ErrNotFound, ErrUnsupported, ErrInvalidConfig, ErrInvalidGrant, context.DeadlineExceeded}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := dialInMemory(t, errProvider{tc.err})
			ctx := context.Background()
			_, readErr := p.Read(ctx)
			_, refreshErr := p.Refresh(ctx, Credential{})
			_, infoErr := p.Info(ctx)
			for op, err := range map[string]error{
				"Info": infoErr, "Configure": p.Configure(ctx, ConfigureRequest{}),
				"Read": readErr, "Save": p.Save(ctx, Credential{}), "Refresh": refreshErr,
			} {
				if err == nil || err.Error() != tc.err.Error() {
					t.Errorf("%s: message %q; want %q", op, err, tc.err)
				}
				for _, s := range sentinels {
					if got, want := errors.Is(err, s), s == tc.sentinel; got != want {
						t.Errorf("%s: errors.Is(err, %v) = %v; want %v", op, s, got, want)
					}
				}
			}
		})
	}
}

// echoProvider stores what it is given, to check fields cross intact.
type echoProvider struct {
	errProvider
	got ConfigureRequest
}

func (p *echoProvider) Configure(_ context.Context, r ConfigureRequest) error { p.got = r; return nil }
func (p *echoProvider) Refresh(_ context.Context, c Credential) (Credential, error) {
	return c, nil
}

func TestCredentialAndConfigCrossIntact(t *testing.T) {
	t.Parallel()
	impl := &echoProvider{}
	p := dialInMemory(t, impl)
	ctx := context.Background()
	tests := map[string]Credential{
		"every field": {
			AccessToken: "a", RefreshToken: "r",
			ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC),
			Scopes:    []string{"s1", "s2"}, Metadata: map[string]string{"k": "v", "empty": ""},
		},
		"unknown expiry, nothing else": {AccessToken: "a"},
	}
	for name, want := range tests {
		got, err := p.Refresh(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() || got.AccessToken != want.AccessToken || got.RefreshToken != want.RefreshToken ||
			!got.ExpiresAt.Equal(want.ExpiresAt) || fmt.Sprint(got.Scopes, got.Metadata) != fmt.Sprint(want.Scopes, want.Metadata) {
			t.Errorf("%s: got %v %v %v; want %v %v %v", name, got, got.Scopes, got.Metadata, want, want.Scopes, want.Metadata)
		}
	}
	req := ConfigureRequest{Name: "n", Config: []byte(`{"path":"/x"}`), OAuth: OAuthConfig{
		TokenURL: "https://t", ClientID: "c", DefaultExpiresIn: 8 * time.Hour, BodyFormat: "json", Scopes: []string{"x"}, Timeout: 1500 * time.Millisecond,
	}}
	if err := p.Configure(ctx, req); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", impl.got) != fmt.Sprintf("%+v", req) {
		t.Errorf("Configure crossed as %+v; want %+v", impl.got, req)
	}
}

func TestCredentialNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	c := Credential{AccessToken: "tok-secret-access", RefreshToken: "tok-secret-refresh", ExpiresAt: time.Unix(1900000000, 0)}
	js, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{c.String(), fmt.Sprintf("%v|%+v|%#v|%s", c, c, c, c), string(js), fmt.Sprint(&c)} {
		if contains(out, "tok-secret") {
			t.Errorf("secret printed: %s", out)
		}
		if !contains(out, Fingerprint("tok-secret-access")) {
			t.Errorf("fingerprint missing from %s", out)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// delayErr is an error carrying a Retry-After, like oauth.Error on a 429.
type delayErr struct{ d time.Duration }

func (e delayErr) Error() string             { return "token endpoint: HTTP 429" }
func (e delayErr) RetryDelay() time.Duration { return e.d }

func TestRetryDelaySurvivesTheWire(t *testing.T) {
	t.Parallel()
	p := dialInMemory(t, errProvider{fmt.Errorf("refresh: %w", delayErr{90 * time.Second})})
	_, err := p.Refresh(context.Background(), Credential{})
	if got := RetryDelay(err); got != 90*time.Second {
		t.Errorf("RetryDelay after the wire = %v; want 1m30s (err %v)", got, err)
	}
	p = dialInMemory(t, errProvider{errors.New("plain")})
	_, err = p.Refresh(context.Background(), Credential{})
	if got := RetryDelay(err); got != 0 {
		t.Errorf("RetryDelay of a plain error = %v; want 0", got)
	}
}
