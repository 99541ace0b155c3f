package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// These tests run the real binary against the real file store and a real
// token endpoint that rotates refresh tokens and punishes reuse, with the
// built-ins in-process and as plugin processes.

// fileState is what the credentials file holds.
type fileState struct {
	Access, Refresh string
	ExpiresAt       json.Number
	Raw             map[string]any
}

func (s *sandbox) readCredentials() fileState {
	s.t.Helper()
	data, err := os.ReadFile(filepath.Join(s.home, ".claude", ".credentials.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		s.t.Fatalf("credentials file does not parse: %v", err)
	}
	var doc struct {
		O struct {
			Access    string      `json:"accessToken"`
			Refresh   string      `json:"refreshToken"`
			ExpiresAt json.Number `json:"expiresAt"`
		} `json:"claudeAiOauth"`
	}
	json.Unmarshal(data, &doc)
	return fileState{doc.O.Access, doc.O.Refresh, doc.O.ExpiresAt, raw}
}

// loginFile writes a credentials file holding a fresh login from srv.
func (s *sandbox) loginFile(srv *oauthtest.Server, expires time.Time) (access, refresh string) {
	access, refresh = srv.Issue()
	s.writeCredentials(fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,"scopes":["user:inference"],"subscriptionType":"max"},"mcpOAuth":{"x":{"y":1}}}`,
		access, refresh, expires.UnixMilli()))
	return access, refresh
}

func newRefreshSandbox(t *testing.T, mode string) (*sandbox, *oauthtest.Server) {
	srv := oauthtest.NewServer(t)
	s := newSandbox(t)
	s.setenv("CREDHOST_BUILTIN="+mode, "CLAUDE_OAUTH_TOKEN_URL="+srv.TokenURL())
	return s, srv
}

func TestTokenRefreshesThroughTheFile(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		oldAccess, oldRefresh := s.loginFile(srv, time.Now().Add(2*time.Minute))
		before := time.Now()
		r := s.run("token", "--json", "--log-level", "trace")
		if r.code != 0 {
			t.Fatalf("token: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		var got tokenJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatal(err)
		}
		st := s.readCredentials()
		if !got.Refreshed || got.Degraded || got.AccessToken == oldAccess || got.AccessToken != st.Access {
			t.Errorf("refreshed %v degraded %v; want a new token, saved to the file", got.Refreshed, got.Degraded)
		}
		if st.Refresh == oldRefresh || st.Refresh == "" {
			t.Errorf("the rotated refresh token was not saved")
		}
		ms, err := st.ExpiresAt.Int64()
		if err != nil || time.UnixMilli(ms).Before(before.Add(59*time.Minute)) {
			t.Errorf("expiresAt %q: want integer milliseconds about an hour ahead", st.ExpiresAt)
		}
		inner := st.Raw["claudeAiOauth"].(map[string]any)
		if inner["subscriptionType"] != "max" || st.Raw["mcpOAuth"] == nil || fmt.Sprint(inner["scopes"]) != "[user:inference user:profile]" {
			t.Errorf("other keys lost or scopes not updated: %v", st.Raw)
		}
		if fi, _ := os.Stat(filepath.Join(s.home, ".claude", ".credentials.json")); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %o; want 0600", fi.Mode().Perm())
		}
		if srv.Requests() != 1 {
			t.Errorf("%d token requests; want 1", srv.Requests())
		}
		for _, secret := range []string{oldAccess, oldRefresh, st.Access, st.Refresh} {
			if strings.Contains(r.stderr, secret) {
				t.Errorf("trace log holds a token:\n%s", r.stderr)
			}
		}
		// The next call finds the fresh token and sends nothing.
		r = s.run("token")
		if r.code != 0 || r.stdout != st.Access+"\n" || srv.Requests() != 1 {
			t.Errorf("second token: exit %d, %d requests; want the saved token and no request", r.code, srv.Requests())
		}
	})
}

func TestRefreshFailureDegrades(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		mode       oauthtest.Mode
		reuse      bool // the refresh token was already used elsewhere
		wantStderr string
	}{
		"500":           {mode: oauthtest.ServerError, wantStderr: "HTTP 500"},
		"HTML":          {mode: oauthtest.HTML, wantStderr: "HTML"},
		"no token":      {mode: oauthtest.MissingAccessToken, wantStderr: "no access_token"},
		"invalid_grant": {reuse: true, wantStderr: "log in again"},
	}
	for name, tc := range tests {
		for _, mode := range modes {
			t.Run(name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				s, srv := newRefreshSandbox(t, mode)
				oldAccess, _ := s.loginFile(srv, time.Now().Add(time.Minute))
				path := filepath.Join(s.home, ".claude", ".credentials.json")
				before, _ := os.ReadFile(path)
				if tc.reuse {
					// Spend the refresh token behind credhost's back.
					s2 := newSandbox(t)
					s2.setenv("CREDHOST_BUILTIN=in-process", "CLAUDE_OAUTH_TOKEN_URL="+srv.TokenURL())
					s2.writeCredentials(string(before))
					if r := s2.run("refresh"); r.code != 0 {
						t.Fatalf("spending the token: %s", r.stderr)
					}
				}
				srv.SetMode(tc.mode)

				r := s.run("token", "--json")
				var got tokenJSON
				json.Unmarshal([]byte(r.stdout), &got)
				if r.code != 0 || got.AccessToken != oldAccess || !got.Degraded || got.Refreshed {
					t.Errorf("token --json: exit %d degraded %v; want exit 0 with the old token, degraded\nstderr:\n%s", r.code, got.Degraded, r.stderr)
				}
				if !strings.Contains(r.stderr, "degraded") || !strings.Contains(r.stderr, tc.wantStderr) {
					t.Errorf("stderr lacks the warning %q:\n%s", tc.wantStderr, r.stderr)
				}
				r = s.run("token", "--strict")
				if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, tc.wantStderr) {
					t.Errorf("token --strict: exit %d stdout %d bytes; want exit 3, nothing on stdout, the reason on stderr:\n%s", r.code, len(r.stdout), r.stderr)
				}
				r = s.run("refresh")
				if r.code != 3 {
					t.Errorf("refresh: exit %d; want 3", r.code)
				}
				if after, _ := os.ReadFile(path); string(after) != string(before) {
					t.Errorf("a failed refresh changed the credentials file")
				}
			})
		}
	}
}

func TestEnvTokenBorrowsOnlyItsOwnExpiry(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		// Same token in the environment and the file: borrowed, refreshed.
		s, srv := newRefreshSandbox(t, mode)
		access, _ := s.loginFile(srv, time.Now().Add(time.Minute))
		s.setenv("CLAUDE_CODE_OAUTH_TOKEN=" + access)
		r := s.run("token", "--json")
		var got tokenJSON
		json.Unmarshal([]byte(r.stdout), &got)
		if r.code != 0 || !got.Refreshed || got.Provider != "oauth-env" || got.AccessToken != s.readCredentials().Access {
			t.Errorf("same token: exit %d refreshed %v provider %q; want oauth-env refreshed through the file\n%s", r.code, got.Refreshed, got.Provider, r.stderr)
		}

		// A different token in the environment: used as is, nothing sent.
		s2, srv2 := newRefreshSandbox(t, mode)
		s2.loginFile(srv2, time.Now().Add(-time.Hour))
		s2.setenv("CLAUDE_CODE_OAUTH_TOKEN=user-chosen-token-SECRET")
		r = s2.run("token", "--json")
		got = tokenJSON{}
		json.Unmarshal([]byte(r.stdout), &got)
		if r.code != 0 || got.AccessToken != "user-chosen-token-SECRET" || got.Refreshed || got.Degraded || got.ExpiresAt != nil || srv2.Requests() != 0 {
			t.Errorf("different token: exit %d refreshed %v degraded %v expires %v, %d requests; want it as is, unknown expiry, no request", r.code, got.Refreshed, got.Degraded, got.ExpiresAt, srv2.Requests())
		}
	})
}

func TestBufferFromEnvironment(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		buffer      string
		wantRefresh bool
	}{
		"default 600s: 8 minutes left needs a refresh": {"", true},
		"300s: 8 minutes left is fine":                 {"300", false},
		"0: only an expired token":                     {"0", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, srv := newRefreshSandbox(t, "in-process")
			if tc.buffer != "" {
				s.setenv("CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS=" + tc.buffer)
			}
			s.loginFile(srv, time.Now().Add(8*time.Minute))
			r := s.run("token", "--json")
			var got tokenJSON
			json.Unmarshal([]byte(r.stdout), &got)
			if r.code != 0 || got.Refreshed != tc.wantRefresh || srv.Requests() != map[bool]int{true: 1}[tc.wantRefresh] {
				t.Errorf("exit %d refreshed %v (%d requests); want refreshed %v", r.code, got.Refreshed, srv.Requests(), tc.wantRefresh)
			}
		})
	}
}

func TestForcedRefreshCommand(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		access, _ := s.loginFile(srv, time.Now().Add(5*time.Hour))
		r := s.run("refresh")
		st := s.readCredentials()
		if r.code != 0 || st.Access == access || !strings.HasPrefix(r.stdout, "refreshed file: expires ") || srv.Requests() != 1 {
			t.Fatalf("refresh: exit %d, stdout %q, %d requests; want a new token saved\n%s", r.code, r.stdout, srv.Requests(), r.stderr)
		}
		if strings.Contains(r.stdout, st.Access) {
			t.Errorf("refresh printed the token")
		}
		// An enterprise token cannot be refreshed: exit 3.
		s.setenv("ANTHROPIC_AUTH_TOKEN=enterprise-SECRET")
		r = s.run("refresh")
		if r.code != 3 || !strings.Contains(r.stderr, `provider "enterprise" cannot refresh`) {
			t.Errorf("refresh of the enterprise token: exit %d; want 3 naming it\n%s", r.code, r.stderr)
		}
	})
}

// TestRetryAfterAcrossProcesses: a 429 with Retry-After seen by one
// `credhost token` holds off the next process too (apiKeyHelper runs a new
// process for every request).
func TestRetryAfterAcrossProcesses(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		s.loginFile(srv, time.Now().Add(time.Minute))
		srv.SetMode(oauthtest.TooManyRequests)
		for i := range 3 {
			r := s.run("token", "--json")
			var got tokenJSON
			json.Unmarshal([]byte(r.stdout), &got)
			if r.code != 0 || !got.Degraded {
				t.Fatalf("call %d: exit %d degraded %v; want the old token, degraded\n%s", i, r.code, got.Degraded, r.stderr)
			}
			if i > 0 && !strings.Contains(r.stderr, "asked to wait") {
				t.Errorf("call %d: stderr does not say it is waiting out Retry-After:\n%s", i, r.stderr)
			}
		}
		if n := srv.Arrived(); n != 1 {
			t.Errorf("%d token requests from 3 processes within Retry-After; want 1", n)
		}

		// Once the wait is over, a refresh goes out and clears the record.
		retryFile := filepath.Join(s.home, ".claude", ".credentials.json.lock.retry-after")
		if err := os.WriteFile(retryFile, []byte(time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)), 0o600); err != nil {
			t.Fatal(err)
		}
		srv.SetMode(oauthtest.Normal)
		r := s.run("token", "--json")
		var got tokenJSON
		json.Unmarshal([]byte(r.stdout), &got)
		if r.code != 0 || !got.Refreshed {
			t.Errorf("after the wait: exit %d refreshed %v; want a refresh\n%s", r.code, got.Refreshed, r.stderr)
		}
		if _, err := os.Stat(retryFile); !os.IsNotExist(err) {
			t.Errorf("the Retry-After record survived a successful refresh")
		}
	})
}

// TestEmbeddedDefaultRefreshesAsClaudeCode refreshes a credentials file
// through the embedded default against the rotating endpoint, in both
// modes, and checks the request is the one Claude Code sends (its client
// id, or the clientId stored with the login, which then asks for its own
// scopes; its default scopes plus the stored ones it keeps) and that the
// saved document keeps every field Claude Code reads.
func TestEmbeddedDefaultRefreshesAsClaudeCode(t *testing.T) {
	t.Parallel()
	const defaultScopes = "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
	tests := map[string]struct {
		extra     string // fields added to claudeAiOauth
		env       []string
		wantID    string
		wantScope string
	}{
		"default client": {
			extra:  `"scopes":["user:inference","user:design:read","org:create_api_key"]`,
			wantID: "9d1c250a-e61b-44d9-88ed-5944d1962f5e", wantScope: defaultScopes + " user:design:read",
		},
		"client id from the environment": {
			extra: `"scopes":["user:inference"]`, env: []string{"CLAUDE_CODE_OAUTH_CLIENT_ID=env-client"},
			wantID: "env-client", wantScope: defaultScopes,
		},
		"stored clientId wins, with its own scopes": {
			extra: `"scopes":["user:inference","custom:scope"],"clientId":"stored-client"`, env: []string{"CLAUDE_CODE_OAUTH_CLIENT_ID=env-client"},
			wantID: "stored-client", wantScope: "user:inference custom:scope",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			inModes(t, func(t *testing.T, mode string) {
				s, srv := newRefreshSandbox(t, mode)
				s.setenv(tc.env...)
				access, refresh := srv.Issue()
				s.writeCredentials(fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,%s,"subscriptionType":"max","rateLimitTier":"default_claude_max_20x"},"mcpOAuth":{"x":{"y":1}}}`,
					access, refresh, time.Now().Add(time.Minute).UnixMilli(), tc.extra))
				r := s.run("token")
				if r.code != 0 || r.stdout == access+"\n" {
					t.Fatalf("token: exit %d, old token served %v\n%s", r.code, r.stdout == access+"\n", r.stderr)
				}
				grants := srv.Grants()
				if len(grants) != 1 || grants[0].ClientID != tc.wantID || grants[0].Scope != tc.wantScope {
					t.Fatalf("token requests %+v; want one with client_id %q and scope %q", grants, tc.wantID, tc.wantScope)
				}
				st := s.readCredentials()
				o, _ := st.Raw["claudeAiOauth"].(map[string]any)
				exp, _ := st.ExpiresAt.Int64()
				if st.Access+"\n" != r.stdout || st.Refresh == refresh || time.UnixMilli(exp).Before(time.Now().Add(50*time.Minute)) {
					t.Errorf("saved tokens: new access %v, rotated refresh %v, expiresAt %d", st.Access+"\n" == r.stdout, st.Refresh != refresh, exp)
				}
				if o["subscriptionType"] != "max" || o["rateLimitTier"] != "default_claude_max_20x" || fmt.Sprint(o["scopes"]) != "[user:inference user:profile]" ||
					(strings.Contains(tc.extra, "clientId") && o["clientId"] != "stored-client") || st.Raw["mcpOAuth"] == nil {
					t.Errorf("saved document lost a field Claude Code reads: %v", st.Raw)
				}
			})
		})
	}
}
