package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth"
)

// TestRefreshFollowsNoRedirect: a token endpoint that answers 3xx must not
// make the client send the refresh token on. The second server must see
// nothing, and the error names the status and the Location's host but not
// its path or query, where the token was put.
func TestRefreshFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	const refresh = "rt-redirect-secret-0123456789"
	for _, status := range []int{301, 302, 303, 307, 308} {
		for name, client := range map[string]*http.Client{
			"default client":                    nil,
			"caller's client following 10 hops": {CheckRedirect: func(*http.Request, []*http.Request) error { return nil }},
		} {
			t.Run(http.StatusText(status)+"/"+name, func(t *testing.T) {
				t.Parallel()
				var elsewhere atomic.Int64
				thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					elsewhere.Add(1)
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"access_token":"stolen","refresh_token":"stolen","expires_in":3600}`)
				}))
				defer thief.Close()
				target, _ := url.Parse(thief.URL)
				endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, thief.URL+"/collect/"+refresh+"?rt="+refresh, status)
				}))
				defer endpoint.Close()
				var opts []oauth.Option
				if client != nil {
					opts = append(opts, oauth.WithHTTPClient(client))
				}
				c, err := oauth.New(sdk.OAuthConfig{TokenURL: endpoint.URL + "/token"}, opts...)
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Refresh(context.Background(), sdk.Credential{AccessToken: "at", RefreshToken: refresh})
				var oe *oauth.Error
				if !errors.As(err, &oe) || oe.StatusCode != status {
					t.Fatalf("got %v; want an *oauth.Error with status %d", err, status)
				}
				if n := elsewhere.Load(); n != 0 {
					t.Errorf("the Location's server got %d requests; want none", n)
				}
				msg := err.Error()
				if !strings.Contains(msg, target.Host) || strings.Contains(msg, refresh) || strings.Contains(msg, "collect") {
					t.Errorf("message %q; want the Location's host %s, no path and no token", msg, target.Host)
				}
				if errors.Is(err, sdk.ErrInvalidGrant) {
					t.Errorf("a redirect matches ErrInvalidGrant")
				}
			})
		}
	}
}

// TestTokenURLMustBeHTTPSUnlessLoopback: New refuses a token URL that
// would carry the refresh token in the clear, except to this machine.
func TestTokenURLMustBeHTTPSUnlessLoopback(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{ // URL -> accepted
		"https://platform.claude.com/v1/oauth/token": true,
		"https://10.0.0.1/token":                     true,
		"http://127.0.0.1:8080/token":                true,
		"http://127.8.9.10/token":                    true,
		"http://[::1]:9/token":                       true,
		"http://localhost:9/token":                   true,
		"http://LOCALHOST/token":                     true,
		"http://platform.claude.com/v1/oauth/token":  false,
		"http://10.0.0.1/token":                      false,
		"http://128.0.0.1/token":                     false,
		"http://localhost.evil.example/token":        false,
		"http://127.0.0.1.evil.example/token":        false,
		"http://[::2]/token":                         false,
		"ftp://127.0.0.1/token":                      false,
	}
	for raw, ok := range tests {
		_, err := oauth.New(sdk.OAuthConfig{TokenURL: raw})
		if ok != (err == nil) || (err != nil && !errors.Is(err, sdk.ErrInvalidConfig)) {
			t.Errorf("%s: got %v; want accepted=%v (ErrInvalidConfig otherwise)", raw, err, ok)
		}
		if err != nil && ok == false && strings.HasPrefix(raw, "http:") && !strings.Contains(err.Error(), "https") {
			t.Errorf("%s: %v; want a message saying to use https", raw, err)
		}
	}
}

// TestServerStringsAreScrubbed: whatever the endpoint puts in its answer
// (the refresh or access token echoed back, control characters, 10 KB) is
// gone from the error, which stays printable and short.
func TestServerStringsAreScrubbed(t *testing.T) {
	t.Parallel()
	const refresh = "rt-ECHOED-secret-abcdefghijklmnopqrstuvwxyz"
	const access = "at-ECHOED-secret-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	big := strings.Repeat("A", 10<<10)
	tests := map[string]struct {
		status      int
		contentType string
		body        func(sentBody string) string
	}{
		"token in error": {status: 400, body: func(string) string {
			return jsonBody(map[string]string{"error": "bad request: refresh_token=" + refresh, "error_description": "echo " + access})
		}},
		"request echoed in error": {status: 400, body: func(sent string) string {
			return jsonBody(map[string]string{"error": sent, "error_description": sent})
		}},
		"token split by control characters": {status: 400, body: func(string) string {
			return jsonBody(map[string]string{"error": refresh[:15] + "\x00\x1b[2J" + refresh[15:], "error_description": "\r\x07" + refresh})
		}},
		"token cut short": {status: 400, body: func(string) string {
			return jsonBody(map[string]string{"error": "invalid_request", "error_description": "got " + refresh[:30]})
		}},
		"10 KB and terminal escapes": {status: 400, body: func(string) string {
			return jsonBody(map[string]string{"error": "\x1b]0;pwned\x07" + big, "error_description": big + "\n\x1b[31m" + refresh})
		}},
		"200 with an error field": {status: 200, body: func(string) string {
			return jsonBody(map[string]string{"error": refresh + big, "error_description": refresh})
		}},
		"HTML with a hostile content type": {status: 200, contentType: "text/html; x=" + refresh + "\x1b[2J", body: func(string) string { return "<html>" + refresh }},
		"expires_in of 10 KB": {status: 200, body: func(string) string {
			return `{"access_token":"new","expires_in":-1` + strings.Repeat("0", 10<<10) + `}`
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sent, _ := io.ReadAll(r.Body)
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				w.Header()["Content-Type"] = []string{ct}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body(string(sent)))
			}))
			defer srv.Close()
			c, err := oauth.New(sdk.OAuthConfig{TokenURL: srv.URL, BodyFormat: oauth.BodyJSON})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Refresh(context.Background(), sdk.Credential{AccessToken: access, RefreshToken: refresh})
			if err == nil {
				t.Fatal("refresh succeeded; want an error")
			}
			assertScrubbed(t, err.Error(), refresh, access)
		})
	}
}

// assertScrubbed checks msg holds no piece of a token, only printable
// characters, and is at most a few hundred bytes per server string.
func assertScrubbed(t *testing.T, msg string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		for i := 0; i+12 <= len(tok); i++ {
			if strings.Contains(msg, tok[i:i+12]) {
				t.Fatalf("message holds a piece of a token (%q): %q", tok[i:i+12], msg)
			}
		}
	}
	for _, r := range msg {
		if !unicode.IsPrint(r) {
			t.Fatalf("message holds the unprintable %U: %q", r, msg)
		}
	}
	if len(msg) > 1000 {
		t.Fatalf("message is %d bytes; want a few hundred at most", len(msg))
	}
}

func jsonBody(m map[string]string) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// TestTokenSplitBetweenErrorAndDescriptionIsScrubbed: an endpoint that
// echoes the refresh token with its start in `error` and the rest in
// `error_description` (in either order) must not leave both halves side by
// side in the message, where a reader joins them again; the halves of a
// short token are each under the length a lone piece is redacted at.
func TestTokenSplitBetweenErrorAndDescriptionIsScrubbed(t *testing.T) {
	t.Parallel()
	for _, refresh := range []string{"test-refresh-f1-2", "rt-SPLIT-secret-abcdefghijklmnopqrstuvwxyz0123456789"} {
		for _, at := range []int{1, 5, len(refresh) / 2, len(refresh) - 3} {
			for _, swap := range []bool{false, true} {
				head, tail := refresh[:at], refresh[at:]
				code, desc := "bad "+head, tail+" rejected"
				if swap {
					code, desc = tail+" x", "y "+head
				}
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, jsonBody(map[string]string{"error": code, "error_description": desc}))
				}))
				c, err := oauth.New(sdk.OAuthConfig{TokenURL: srv.URL})
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Refresh(context.Background(), sdk.Credential{RefreshToken: refresh})
				srv.Close()
				var oe *oauth.Error
				if !errors.As(err, &oe) {
					t.Fatalf("got %v; want an *oauth.Error", err)
				}
				// The two fields as the message joins them, in the order
				// that puts the halves together.
				joined := oe.Code + oe.Description
				if swap {
					joined = oe.Description + oe.Code
				}
				if strings.Contains(strings.ReplaceAll(joined, " ", ""), refresh) || (strings.Contains(oe.Code+oe.Description, head) && strings.Contains(oe.Code+oe.Description, tail)) {
					t.Errorf("token split at %d (swapped %v): error %q, description %q still hold both halves", at, swap, oe.Code, oe.Description)
				}
			}
		}
	}
}

// TestTokenURLPasswordIsNotQuoted: a token URL refused for plain http is
// quoted in the error, but a password in it (client credentials in the
// userinfo) is not.
func TestTokenURLPasswordIsNotQuoted(t *testing.T) {
	t.Parallel()
	const password = "s3cr3t-client-pw"
	_, err := oauth.New(sdk.OAuthConfig{TokenURL: "http://client:" + password + "@auth.example.com/token"})
	if err == nil || strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "auth.example.com") {
		t.Errorf("got %v; want the URL refused and quoted without its password", err)
	}
}
