package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func newClient(t *testing.T, srv *oauthtest.Server, body string, defaultExpiresIn time.Duration) *oauth.Client {
	t.Helper()
	c, err := oauth.New(sdk.OAuthConfig{TokenURL: srv.TokenURL(), ClientID: "client-1", BodyFormat: body, DefaultExpiresIn: defaultExpiresIn, Timeout: 2 * time.Second},
		oauth.WithNow(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		mode           oauthtest.Mode
		body           string
		defaultExpires time.Duration
		wantErr        string
		wantKeepOld    bool // refresh token kept from the old credential
		wantExpiry     time.Time
		wantRetry      time.Duration
	}{
		"form rotates":          {body: oauth.BodyForm, wantExpiry: now.Add(time.Hour)},
		"json rotates":          {body: oauth.BodyJSON, wantExpiry: now.Add(time.Hour)},
		"no refresh token kept": {mode: oauthtest.NoRefreshToken, wantKeepOld: true, wantExpiry: now.Add(time.Hour)},
		// The host gives a credential without expiry its default_expires_in
		// (TestRefreshRules), for every provider: the client leaves it unknown.
		"no expires_in, default is the host's": {mode: oauthtest.NoExpiresIn, defaultExpires: 8 * time.Hour},
		"no expires_in, none set":              {mode: oauthtest.NoExpiresIn},
		"500":                                  {mode: oauthtest.ServerError, wantErr: "HTTP 500: server_error"},
		"HTML":                                 {mode: oauthtest.HTML, wantErr: "response is HTML (text/html; charset=utf-8), not JSON"},
		"not JSON":                             {mode: oauthtest.NotJSON, wantErr: "not valid JSON"},
		"missing access token":                 {mode: oauthtest.MissingAccessToken, wantErr: "response has no access_token"},
		"429 honours Retry-After":              {mode: oauthtest.TooManyRequests, wantErr: "HTTP 429", wantRetry: 2 * time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := oauthtest.NewServer(t)
			srv.SetMode(tc.mode)
			access, refresh := srv.Issue()
			old := sdk.Credential{AccessToken: access, RefreshToken: refresh, Scopes: []string{"old"}, Metadata: map[string]string{"k": "v"}}
			got, err := newClient(t, srv, tc.body, tc.defaultExpires).Refresh(context.Background(), old)
			if srv.Requests() != 1 {
				t.Errorf("%d requests; want exactly 1", srv.Requests())
			}
			if tc.wantErr != "" {
				var oe *oauth.Error
				if !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Refresh: got %v; want an *oauth.Error containing %q", err, tc.wantErr)
				}
				if oe.RetryAfter != tc.wantRetry {
					t.Errorf("RetryAfter %v; want %v", oe.RetryAfter, tc.wantRetry)
				}
				if errors.Is(err, sdk.ErrInvalidGrant) {
					t.Errorf("a %s failure matches ErrInvalidGrant", name)
				}
				if strings.Contains(err.Error(), refresh) || strings.Contains(err.Error(), access) {
					t.Errorf("error shows a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if got.AccessToken == "" || got.AccessToken == access {
				t.Errorf("access token not replaced")
			}
			if keptOld := got.RefreshToken == refresh; keptOld != tc.wantKeepOld {
				t.Errorf("kept the old refresh token = %v; want %v", keptOld, tc.wantKeepOld)
			}
			if got.RefreshToken == "" {
				t.Errorf("refresh token dropped")
			}
			if !got.ExpiresAt.Equal(tc.wantExpiry) {
				t.Errorf("expiry %v; want %v", got.ExpiresAt, tc.wantExpiry)
			}
			if strings.Join(got.Scopes, " ") != "user:inference user:profile" || got.Metadata["k"] != "v" {
				t.Errorf("scopes %q metadata %q; want the response's scopes and the old metadata", got.Scopes, got.Metadata)
			}
			wantCT := "application/x-www-form-urlencoded"
			if tc.body == oauth.BodyJSON {
				wantCT = "application/json"
			}
			if ct := srv.ContentTypes(); len(ct) != 1 || ct[0] != wantCT {
				t.Errorf("content types %q; want [%s]", ct, wantCT)
			}
		})
	}
}

func TestReuseIsInvalidGrantAndRevokesFamily(t *testing.T) {
	t.Parallel()
	srv := oauthtest.NewServer(t)
	c := newClient(t, srv, oauth.BodyForm, 0)
	access, refresh := srv.Issue()
	old := sdk.Credential{AccessToken: access, RefreshToken: refresh}
	first, err := c.Refresh(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(context.Background(), old)
	if !errors.Is(err, sdk.ErrInvalidGrant) || !strings.Contains(err.Error(), "HTTP 400: invalid_grant") {
		t.Fatalf("reuse: got %v; want ErrInvalidGrant saying HTTP 400: invalid_grant", err)
	}
	if srv.Reuses() != 1 || !srv.Revoked(first.RefreshToken) {
		t.Errorf("server saw %d reuses, family revoked %v; want 1, true", srv.Reuses(), srv.Revoked(first.RefreshToken))
	}
	if _, err := c.Refresh(context.Background(), first); !errors.Is(err, sdk.ErrInvalidGrant) {
		t.Errorf("newest token after revocation: got %v; want ErrInvalidGrant", err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	srv := oauthtest.NewServer(t)
	srv.Delay = 2 * time.Second
	c, err := oauth.New(sdk.OAuthConfig{TokenURL: srv.TokenURL(), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Refresh(context.Background(), sdk.Credential{AccessToken: "a", RefreshToken: "r"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("slow endpoint: got %v after %v; want a deadline error well within 1s", err, time.Since(start))
	}
}

// TestCheckConfigNamesTheKey: the one check of the oauth config, which
// the host's loader also makes, names the key that is wrong; a config
// without a token URL is valid (nothing refreshes).
func TestCheckConfigNamesTheKey(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		cfg     sdk.OAuthConfig
		wantKey string
		wantMsg string
	}{
		"no token URL":         {cfg: sdk.OAuthConfig{BodyFormat: "json"}},
		"https":                {cfg: sdk.OAuthConfig{TokenURL: "https://x/token", BodyFormat: "form"}},
		"http to loopback":     {cfg: sdk.OAuthConfig{TokenURL: "http://127.0.0.1:8080/token"}},
		"unknown body":         {cfg: sdk.OAuthConfig{BodyFormat: "xml"}, wantKey: "body", wantMsg: `"xml": want form or json`},
		"http to another host": {cfg: sdk.OAuthConfig{TokenURL: "http://example.com/token"}, wantKey: "token_url", wantMsg: "plain http is allowed only to a loopback host"},
		"relative URL":         {cfg: sdk.OAuthConfig{TokenURL: "/token"}, wantKey: "token_url", wantMsg: `"/token" is not an absolute http(s) URL`},
	}
	for name, tc := range tests {
		err := oauth.CheckConfig(tc.cfg)
		var ce *oauth.ConfigError
		switch {
		case tc.wantKey == "" && err != nil:
			t.Errorf("%s: %v; want valid", name, err)
		case tc.wantKey != "" && (!errors.As(err, &ce) || ce.Key != tc.wantKey || !strings.Contains(ce.Err.Error(), tc.wantMsg)):
			t.Errorf("%s: got %v; want key %s: %s", name, err, tc.wantKey, tc.wantMsg)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := map[string]sdk.OAuthConfig{
		"relative URL":   {TokenURL: "/token"},
		"ftp URL":        {TokenURL: "ftp://x/token"},
		"empty URL":      {},
		"unknown format": {TokenURL: "https://x/token", BodyFormat: "xml"},
	}
	for name, cfg := range tests {
		if _, err := oauth.New(cfg); !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Errorf("%s: got %v; want ErrInvalidConfig", name, err)
		}
	}
	if _, err := oauth.New(sdk.OAuthConfig{TokenURL: "https://x/token"}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestNoRefreshTokenSendsNothing(t *testing.T) {
	t.Parallel()
	srv := oauthtest.NewServer(t)
	_, err := newClient(t, srv, "", 0).Refresh(context.Background(), sdk.Credential{AccessToken: "a"})
	if err == nil || srv.Requests() != 0 {
		t.Errorf("got %v with %d requests; want an error and no request", err, srv.Requests())
	}
}

func TestRetryAfterIsCapped(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", r.URL.Query().Get("ra"))
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	for ra, want := range map[string]time.Duration{
		"120":                           2 * time.Minute,
		"99999999999999999999":          0, // not an int64: ignored
		"9223372036854775807":           24 * time.Hour,
		"-5":                            0,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0, // in the past
	} {
		c, _ := oauth.New(sdk.OAuthConfig{TokenURL: srv.URL + "/?ra=" + url.QueryEscape(ra)})
		_, err := c.Refresh(context.Background(), sdk.Credential{RefreshToken: "r"})
		if got := sdk.RetryDelay(err); got != want {
			t.Errorf("Retry-After %q: %v; want %v", ra, got, want)
		}
	}
}

// TestClientIDAndScopesPerCredential checks what a grant asks for, in both
// body formats: Scopes always, then the stored scopes KeepScopes lists; a
// client id stored under ClientIDMetadata replaces ClientID and brings the
// credential's own scopes (Scopes when it has none).
func TestClientIDAndScopesPerCredential(t *testing.T) {
	t.Parallel()
	cfg := sdk.OAuthConfig{ClientID: "default-client", Scopes: []string{"a", "b"}, KeepScopes: []string{"k1", "k2"}, ClientIDMetadata: "clientId", Timeout: 2 * time.Second}
	tests := map[string]struct {
		cfg       sdk.OAuthConfig
		stored    []string
		meta      map[string]string
		wantID    string
		wantScope string
	}{
		"default scopes and the kept stored ones": {cfg: cfg, stored: []string{"b", "k2", "other"}, wantID: "default-client", wantScope: "a b k2"},
		"nothing stored":                     {cfg: cfg, wantID: "default-client", wantScope: "a b"},
		"stored client id and its scopes":    {cfg: cfg, stored: []string{"x", "y"}, meta: map[string]string{"clientId": "stored"}, wantID: "stored", wantScope: "x y"},
		"stored client id, no stored scopes": {cfg: cfg, meta: map[string]string{"clientId": "stored"}, wantID: "stored", wantScope: "a b"},
		"empty stored client id":             {cfg: cfg, stored: []string{"k1"}, meta: map[string]string{"clientId": ""}, wantID: "default-client", wantScope: "a b k1"},
		"metadata key not configured":        {cfg: sdk.OAuthConfig{ClientID: "default-client", Timeout: time.Second}, meta: map[string]string{"clientId": "stored"}, wantID: "default-client"},
	}
	for name, tc := range tests {
		for _, body := range []string{oauth.BodyForm, oauth.BodyJSON} {
			t.Run(name+"/"+body, func(t *testing.T) {
				t.Parallel()
				srv := oauthtest.NewServer(t)
				cfg := tc.cfg
				cfg.TokenURL, cfg.BodyFormat = srv.TokenURL(), body
				c, err := oauth.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				access, refresh := srv.Issue()
				if _, err := c.Refresh(context.Background(), sdk.Credential{AccessToken: access, RefreshToken: refresh, Scopes: tc.stored, Metadata: tc.meta}); err != nil {
					t.Fatal(err)
				}
				if g := srv.Grants(); len(g) != 1 || g[0].ClientID != tc.wantID || g[0].Scope != tc.wantScope {
					t.Errorf("grants %+v; want client_id %q scope %q", g, tc.wantID, tc.wantScope)
				}
			})
		}
	}
}

// TestRotateOnArrivalSpendsTheTokenOfAnAbandonedRequest: in the test
// endpoint's RotateOnArrival mode, a request abandoned before its late
// answer has still rotated the refresh token, so presenting the old one
// again is a reuse that revokes the family (what a client killed
// mid-refresh leaves behind); answered in time, it is a normal refresh.
func TestRotateOnArrivalSpendsTheTokenOfAnAbandonedRequest(t *testing.T) {
	t.Parallel()
	srv := oauthtest.NewServer(t)
	srv.SetMode(oauthtest.RotateOnArrival)
	c := newClient(t, srv, oauth.BodyJSON, 0)

	access, refresh := srv.Issue()
	fresh, err := c.Refresh(context.Background(), sdk.Credential{AccessToken: access, RefreshToken: refresh})
	if err != nil || fresh.RefreshToken == refresh {
		t.Fatalf("refresh answered in time: %v, rotated %v; want a new refresh token", err, fresh.RefreshToken != refresh)
	}

	access, refresh = srv.Issue()
	srv.SetDelay(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Refresh(ctx, sdk.Credential{AccessToken: access, RefreshToken: refresh}); err == nil {
		t.Fatal("a refresh abandoned after 200ms of a 5s answer succeeded")
	}
	srv.SetDelay(0)
	_, err = c.Refresh(context.Background(), sdk.Credential{AccessToken: access, RefreshToken: refresh})
	if !errors.Is(err, sdk.ErrInvalidGrant) || srv.Reuses() != 1 || !srv.Revoked(refresh) {
		t.Errorf("old token again: %v, %d reuses, revoked %v; want invalid_grant, 1 reuse, the family revoked", err, srv.Reuses(), srv.Revoked(refresh))
	}
}
