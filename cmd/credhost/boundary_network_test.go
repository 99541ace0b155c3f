package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/credhost/credhost/host/hosttest"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// These tests attack the real binary from outside: a token endpoint that
// redirects or echoes what it was sent, a config over plain http, a secret
// in the environment quoted by a config error, a named pipe swapped in for
// the store.

// TestRedirectingTokenEndpointDegrades: a token endpoint answering 307 to
// another host must not get the refresh token sent there: the refresh
// fails (degraded, the old token printed), the other host sees nothing,
// the store is left byte for byte, and stderr names the status and the
// host but no token.
func TestRedirectingTokenEndpointDegrades(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		var stolen atomic.Int64
		thief := hosttest.ServeOn(t, "127.0.0.2:0", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stolen.Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"sk-ant-oat01-thief","refresh_token":"sk-ant-ort01-thief","expires_in":3600}`)
		}))
		thiefHost := strings.TrimPrefix(thief.URL, "http://")
		srv := oauthtest.NewServer(t)
		redirector := hosttest.ServeOn(t, "127.0.0.1:0", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, thief.URL+"/steal?from="+url.QueryEscape(r.URL.Path), http.StatusTemporaryRedirect)
		}))
		s := newSandbox(t)
		s.setenv("CREDHOST_BUILTIN="+mode, "CLAUDE_OAUTH_TOKEN_URL="+redirector.URL+"/v1/oauth/token")
		oldAccess, oldRefresh := s.loginFile(srv, time.Now().Add(time.Minute))
		path := filepath.Join(s.home, ".claude", ".credentials.json")
		before, _ := os.ReadFile(path)

		r := s.run("token", "--json")
		var got tokenJSON
		json.Unmarshal([]byte(r.stdout), &got)
		if r.code != 0 || got.AccessToken != oldAccess || !got.Degraded {
			t.Errorf("token --json: exit %d, degraded %v; want exit 0 with the old token, degraded\nstderr:\n%s", r.code, got.Degraded, r.stderr)
		}
		if n := stolen.Load(); n != 0 {
			t.Errorf("the redirect's target got %d requests; want none", n)
		}
		if !strings.Contains(r.stderr, "HTTP 307") || !strings.Contains(r.stderr, thiefHost) {
			t.Errorf("stderr does not name the status and the Location's host %s:\n%s", thiefHost, r.stderr)
		}
		for _, secret := range []string{oldAccess, oldRefresh, "steal"} {
			if strings.Contains(r.stderr, secret) {
				t.Errorf("stderr holds %q:\n%s", secret, r.stderr)
			}
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("the store changed:\n%s", after)
		}
		if r := s.run("refresh"); r.code != 3 || stolen.Load() != 0 {
			t.Errorf("refresh: exit %d, %d stolen; want exit 3 and nothing sent on", r.code, stolen.Load())
		}
	})
}

// TestPlainHTTPTokenURLIsAConfigError: a token endpoint over plain http to
// anything but this machine is a config error (exit 2) naming the key and
// its place; loopback stays allowed for tests and local proxies.
func TestPlainHTTPTokenURLIsAConfigError(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		config string
		env    []string
		want   []string
	}{
		"in a config file": {
			config: "version: 1\noauth:\n  token_url: http://auth.example.com/v1/oauth/token\nproviders:\n  - {name: f, plugin: file}\n",
			want:   []string{"credhost.yaml:3:14: oauth.token_url", "use https"},
		},
		"from the environment, in the embedded default": {
			env:  []string{"CLAUDE_OAUTH_TOKEN_URL=http://auth.example.com/v1/oauth/token"},
			want: []string{"embedded default:20:14: oauth.token_url", "use https"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.setenv(tc.env...)
			s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
			args := []string{"token"}
			if tc.config != "" {
				args = append(args, "--config", s.writeConfig(tc.config))
			}
			r := s.run(args...)
			if r.code != 2 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want exit 2 and nothing printed\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// TestServerEchoOfTokensNeverReachesStderr: a token endpoint that echoes
// the request (the refresh token in `error`), with terminal escapes and
// 10 KB in its fields, must leave no piece of a token, no control
// character and no flood in what credhost prints.
func TestServerEchoOfTokensNeverReachesStderr(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		big := strings.Repeat("B", 10<<10)
		echo := hosttest.ServeOn(t, "127.0.0.1:0", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sent, _ := io.ReadAll(r.Body)
			body, _ := json.Marshal(map[string]string{
				"error":             "invalid_request: " + string(sent) + "\x1b]0;owned\x07\x1b[2J",
				"error_description": big + "\r\n\x00" + string(sent),
			})
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write(body)
		}))
		srv := oauthtest.NewServer(t)
		s := newSandbox(t)
		s.setenv("CREDHOST_BUILTIN="+mode, "CLAUDE_OAUTH_TOKEN_URL="+echo.URL+"/token")
		access, refresh := s.loginFile(srv, time.Now().Add(time.Minute))
		for _, args := range [][]string{{"token"}, {"refresh"}, {"token", "--strict"}} {
			r := s.run(args...)
			if !strings.Contains(r.stderr, "HTTP 400") {
				t.Errorf("%v: stderr does not report the failed refresh:\n%s", args, r.stderr)
			}
			assertScrubbed(t, fmt.Sprint(args), r.stderr, access, refresh)
		}
	})
}

// assertScrubbed: no 12-byte piece of a token, nothing unprintable but
// line breaks and tabs, and no 10 KB field copied out.
func assertScrubbed(t *testing.T, where, out string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		for i := 0; i+12 <= len(tok); i++ {
			if strings.Contains(out, tok[i:i+12]) {
				t.Errorf("%s: output holds a piece of a token (%q):\n%.2000s", where, tok[i:i+12], out)
				return
			}
		}
	}
	for _, r := range out {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' {
			t.Errorf("%s: output holds the unprintable %U:\n%q", where, r, out)
			return
		}
	}
	if strings.Contains(out, strings.Repeat("B", 1000)) {
		t.Errorf("%s: output copies the 10 KB field (%d bytes)", where, len(out))
	}
}

// TestConfigValueFromASecretIsQuotedAsWritten: `var: ${SECRET}` with a
// secret that is no variable name makes the env provider refuse its
// config, and one that could be a name makes it report the variable unset;
// either message must quote ${SECRET}, as the config file says, and never
// the secret, in token, status and doctor alike; a short secret too, which
// the env provider names unquoted, as $NAME.
func TestConfigValueFromASecretIsQuotedAsWritten(t *testing.T) {
	t.Parallel()
	for name, secret := range map[string]string{"not a name": "sk-ant-secret-value", "a name": "sk_ant_secret_value", "a short name": "hunter2pw"} {
		for _, mode := range modes {
			t.Run(name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				s := newSandbox(t)
				s.setenv("SECRET=" + secret)
				cfg := s.writeConfig(fmt.Sprintf("version: 1\nplugins: {builtin: %s}\nproviders:\n  - name: tok\n    plugin: env\n    config:\n      var: ${SECRET}\n", mode))
				for _, args := range [][]string{{"token"}, {"status"}, {"doctor"}, {"status", "--json"}} {
					r := s.run(append(args, "--config", cfg)...)
					out := r.stdout + r.stderr
					if strings.Contains(out, secret) {
						t.Errorf("%v prints the secret:\n%s", args, out)
					}
					if !strings.Contains(out, "${SECRET}") {
						t.Errorf("%v does not quote ${SECRET}:\n%s", args, out)
					}
				}
			})
		}
	}
}

// TestRefreshErrorQuotesTheTokenURLAsWritten: a token_url whose query
// takes a key from ${TOKEN_KEY} (short, so only its quoting can tell it
// from ordinary text) must be quoted as the config file says when the
// refresh fails and the error names the URL, in token's warning and
// refresh's error alike.
func TestRefreshErrorQuotesTheTokenURLAsWritten(t *testing.T) {
	t.Parallel()
	const key = "hunter2pw"
	inModes(t, func(t *testing.T, mode string) {
		// Nothing listens on port 1: the refresh fails to connect, and
		// net/http's message quotes the URL.
		s := newSandbox(t)
		s.setenv("TOKEN_KEY=" + key)
		s.writeCredentials(validCredentials(time.Now().Add(time.Minute)))
		cfg := s.writeConfig(fmt.Sprintf("version: 1\nplugins: {builtin: %s}\noauth:\n  token_url: https://127.0.0.1:1/v1/oauth/token?key=${TOKEN_KEY}\nproviders:\n  - {name: f, plugin: file}\n", mode))
		for _, args := range [][]string{{"token"}, {"refresh"}} {
			r := s.run(append(args, "--config", cfg)...)
			if strings.Contains(r.stderr, key) {
				t.Errorf("%v prints the key from the environment:\n%s", args, r.stderr)
			}
			if !strings.Contains(r.stderr, "key=${TOKEN_KEY}") {
				t.Errorf("%v does not quote the URL as the config says:\n%s", args, r.stderr)
			}
		}
	})
}

// TestCommandFromASecretIsShownAsWritten: status, status --json and doctor
// name an external plugin by its command; a command built from ${VAR}
// holding a secret (a token pasted into the wrong variable) must be shown
// as the config file spells it, as the start error already quotes it.
func TestCommandFromASecretIsShownAsWritten(t *testing.T) {
	t.Parallel()
	const secret = "sk-ant-oat01-pasted-into-PLUGIN_DIR"
	s := newSandbox(t)
	s.setenv("PLUGIN_DIR=" + secret)
	cfg := s.writeConfig("version: 1\nproviders:\n  - {name: ext, command: '/nonexistent/${PLUGIN_DIR}/plugin'}\n")
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"doctor"}, {"token"}} {
		r := s.run(append(args, "--config", cfg)...)
		out := r.stdout + r.stderr
		if strings.Contains(out, secret) {
			t.Errorf("%v prints the secret:\n%s", args, out)
		}
		if !strings.Contains(out, "${PLUGIN_DIR}") {
			t.Errorf("%v does not show the command as written:\n%s", args, out)
		}
	}
}
