package plugin

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/credhost/credhost/sdk"
)

// errProvider returns err from every call; the table below sends each
// sentinel across a real gRPC connection and checks it comes back.
type errProvider struct{ err error }

func (p errProvider) Info(context.Context) (sdk.Info, error)                { return sdk.Info{}, p.err }
func (p errProvider) Configure(context.Context, sdk.ConfigureRequest) error { return p.err }
func (p errProvider) Read(context.Context) (sdk.Credential, error)          { return sdk.Credential{}, p.err }
func (p errProvider) Save(context.Context, sdk.Credential) error            { return p.err }
func (p errProvider) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{}, p.err
}

func dialInMemory(t *testing.T, impl sdk.Provider) sdk.Provider {
	t.Helper()
	client, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{pluginName: &grpcPlugin{impl: impl}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(pluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(sdk.Provider)
}

func TestSentinelsSurviveTheWire(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err      error
		sentinel error // nil: must match none of the sentinels
		// text is the message on the host side when it is not err's: the
		// sentinel's words, which the code carries, are not repeated.
		text string
	}{
		"not found":         {fmt.Errorf("%w: no file at /x", sdk.ErrNotFound), sdk.ErrNotFound, "no file at /x"},
		"unsupported":       {fmt.Errorf("%w: env is read-only", sdk.ErrUnsupported), sdk.ErrUnsupported, "env is read-only"},
		"invalid config":    {fmt.Errorf("%w: unknown key \"pth\"", sdk.ErrInvalidConfig), sdk.ErrInvalidConfig, `unknown key "pth"`},
		"invalid grant":     {fmt.Errorf("%w: log in again", sdk.ErrInvalidGrant), sdk.ErrInvalidGrant, "log in again"},
		"bare sentinel":     {sdk.ErrNotFound, sdk.ErrNotFound, ""},
		"deadline":          {fmt.Errorf("keychain: %w", context.DeadlineExceeded), context.DeadlineExceeded, ""},
		"plain fault":       {errors.New("disk on fire"), nil, ""},
		"doubly wrapped":    {fmt.Errorf("outer: %w", fmt.Errorf("%w: inner", sdk.ErrUnsupported)), sdk.ErrUnsupported, ""},
		"fault mentions it": {errors.New("not found in PATH"), nil, ""},
		// A store reached over gRPC: its status is the store's, not the
		// plugin connection's, so a member going away is no plugin crash.
		"backend status wrapped": {fmt.Errorf("etcd get: %w", status.Error(codes.Unavailable, "member went away")), nil, ""},
		"backend unavailable":    {status.Error(codes.Unavailable, "member went away"), nil, ""},
	}
	sentinels := []error{sdk.ErrNotFound, sdk.ErrUnsupported, sdk.ErrInvalidConfig, sdk.ErrInvalidGrant, context.DeadlineExceeded}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := dialInMemory(t, errProvider{tc.err})
			ctx := context.Background()
			_, readErr := p.Read(ctx)
			_, refreshErr := p.Refresh(ctx, sdk.Credential{})
			_, infoErr := p.Info(ctx)
			for op, err := range map[string]error{
				"Info": infoErr, "Configure": p.Configure(ctx, sdk.ConfigureRequest{}),
				"Read": readErr, "Save": p.Save(ctx, sdk.Credential{}), "Refresh": refreshErr,
			} {
				want := tc.text
				if want == "" {
					want = tc.err.Error()
				}
				if err == nil || err.Error() != want {
					t.Errorf("%s: message %q; want %q", op, err, want)
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
	got sdk.ConfigureRequest
}

func (p *echoProvider) Configure(_ context.Context, r sdk.ConfigureRequest) error {
	p.got = r
	return nil
}
func (p *echoProvider) Refresh(_ context.Context, c sdk.Credential) (sdk.Credential, error) {
	return c, nil
}

func TestCredentialAndConfigCrossIntact(t *testing.T) {
	t.Parallel()
	impl := &echoProvider{}
	p := dialInMemory(t, impl)
	ctx := context.Background()
	tests := map[string]sdk.Credential{
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
	req := sdk.ConfigureRequest{Name: "n", Config: []byte(`{"path":"/x"}`), OAuth: sdk.OAuthConfig{
		TokenURL: "https://t", ClientID: "c", DefaultExpiresIn: 8 * time.Hour, BodyFormat: "json", Scopes: []string{"x"}, Timeout: 1500 * time.Millisecond,
	}}
	if err := p.Configure(ctx, req); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", impl.got) != fmt.Sprintf("%+v", req) {
		t.Errorf("Configure crossed as %+v; want %+v", impl.got, req)
	}
}

// delayErr is an error carrying a Retry-After, like oauth.Error on a 429.
type delayErr struct{ d time.Duration }

func (e delayErr) Error() string             { return "token endpoint: HTTP 429" }
func (e delayErr) RetryDelay() time.Duration { return e.d }

func TestRetryDelaySurvivesTheWire(t *testing.T) {
	t.Parallel()
	p := dialInMemory(t, errProvider{fmt.Errorf("refresh: %w", delayErr{90 * time.Second})})
	_, err := p.Refresh(context.Background(), sdk.Credential{})
	if got := sdk.RetryDelay(err); got != 90*time.Second {
		t.Errorf("RetryDelay after the wire = %v; want 1m30s (err %v)", got, err)
	}
	p = dialInMemory(t, errProvider{errors.New("plain")})
	_, err = p.Refresh(context.Background(), sdk.Credential{})
	if got := sdk.RetryDelay(err); got != 0 {
		t.Errorf("RetryDelay of a plain error = %v; want 0", got)
	}
}
