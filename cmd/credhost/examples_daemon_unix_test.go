//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// The launchers of examples/ run against the real daemon: the Go one
// (examples/launcher, the library and its Transport) and the Python one
// (examples/python, stdlib only).

// api is an API that refuses one token (401) and takes any other.
type api struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // the bearer tokens, in order
}

func newAPI(t *testing.T, refused string) *api {
	a := &api{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		a.mu.Lock()
		a.seen = append(a.seen, tok)
		a.mu.Unlock()
		if tok == "" || tok == refused {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(a.Close)
	return a
}

func TestLauncherExampleAgainstTheDaemon(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "launcher")
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/launcher").CombinedOutput(); err != nil {
		t.Fatalf("build examples/launcher: %v\n%s", err, out)
	}
	s, srv := newRefreshSandbox(t, "in-process")
	old, _ := s.loginFile(srv, time.Now().Add(2*time.Hour))
	s.serveClients()
	a := newAPI(t, old) // the API has revoked the stored token

	cmd := exec.Command(bin, "-n", "3", "-url", a.URL+"/v1/me", "--", "sh", "-c", `printf 'agent %s %s\n' "$AGENT" "$CLAUDE_CODE_OAUTH_TOKEN"`)
	cmd.Env, cmd.Dir = s.env, s.home
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("launcher: %v\n%s", err, out)
	}
	fresh := s.readCredentials().Access
	if fresh == old {
		t.Fatalf("the store still holds the refused token")
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 || lines[0] != "GET "+a.URL+"/v1/me: 200 OK" {
		t.Fatalf("launcher printed:\n%s\nwant the call's 200 and three agents", out)
	}
	agents := lines[1:]
	for i := range agents {
		if want := fmt.Sprintf("agent %d %s", i, fresh); !contains(agents, want) {
			t.Errorf("no agent line %q in:\n%s", "agent "+fmt.Sprint(i)+" <the refreshed token>", out)
		}
	}
	a.mu.Lock()
	seen := strings.Join(a.seen, " ")
	a.mu.Unlock()
	if seen != old+" "+fresh {
		t.Errorf("the API saw %d requests; want the refused token, then the refreshed one", len(a.seen))
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("%d token requests; want 1", n)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// pythonClient runs script with examples/python on the import path, in
// the sandbox's environment, and decodes the JSON it prints.
func (s *sandbox) pythonClient(script string) map[string]any {
	s.t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		s.t.Skip("python3 is not installed")
	}
	dir, err := filepath.Abs("../../examples/python")
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Env, cmd.Dir = append(append([]string{}, s.env...), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1"), s.home
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		s.t.Fatalf("python3: %v\n%s%s", err, out, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		s.t.Fatalf("python3 printed %q: %v", out, err)
	}
	return got
}

func TestPythonClientAgainstTheDaemon(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	old, _ := s.loginFile(srv, time.Now().Add(2*time.Hour))
	s.serveClients()
	hung := filepath.Join(socketDir(t), "hung.sock")
	l, err := net.Listen("unix", hung) // never accepted: a connection waits, unanswered
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s.setenv("HUNG_SOCKET=" + hung)

	got := s.pythonClient(`
import json, credhost_client as credhost
out = {}
out["first"] = credhost.get_token()
out["fresh"] = credhost.refresh(credhost.fingerprint(out["first"]))
# A second caller that saw the same token rejected: no second refresh.
out["again"] = credhost.refresh(credhost.fingerprint(out["first"]))
out["json"] = credhost.Client().token()
try:
    credhost.get_token("/nonexistent/credhost.sock")
except credhost.DaemonUnavailable as e:
    out["unavailable"] = [e.code, e.exit_code]
import os, time
start = time.monotonic()
try:
    credhost.get_token(os.environ["HUNG_SOCKET"])
except credhost.DaemonUnavailable as e:
    out["hung"] = time.monotonic() - start
print(json.dumps(out))
`)
	fresh := s.readCredentials().Access
	if got["first"] != old || got["fresh"] != fresh || fresh == old || got["again"] != fresh {
		t.Errorf("get_token, refresh, refresh again: %v, %v, %v; want the stored token, then the refreshed one twice",
			got["first"] == old, got["fresh"] == fresh, got["again"] == fresh)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("%d token requests; want 1", n)
	}
	tok, _ := got["json"].(map[string]any)
	if tok["access_token"] != fresh || tok["provider"] != "file" || tok["fingerprint"] == "" {
		t.Errorf("Client().token() = provider %v, fingerprint %v; want the token --json of the refreshed token", tok["provider"], tok["fingerprint"])
	}
	if took, ok := got["hung"].(float64); !ok || took > fallbackBound.Seconds() {
		t.Errorf("a daemon that never answers: %v; want DaemonUnavailable within the dial bound", got["hung"])
	}
	if fmt.Sprint(got["unavailable"]) != "[unavailable 2]" {
		t.Errorf("a socket nobody listens on: %v; want DaemonUnavailable", got["unavailable"])
	}
}

// The daemon's errors reach Python with their code and exit code.
func TestPythonClientErrors(t *testing.T) {
	t.Parallel()
	const script = `
import json, credhost_client as credhost
out = {}
for name, call in [("token", credhost.get_token), ("refresh", credhost.refresh)]:
    try:
        call()
        out[name] = "no error"
    except credhost.CredhostError as e:
        out[name] = [e.code, e.exit_code, e.status, bool(e.message)]
print(json.dumps(out))
`
	t.Run("no credential", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		s.serveClients()
		got := s.pythonClient(script)
		for _, name := range []string{"token", "refresh"} {
			if fmt.Sprint(got[name]) != "[no_credential 1 404 true]" {
				t.Errorf("%s: %v; want no_credential, exit code 1, 404, a message", name, got[name])
			}
		}
	})
	t.Run("failed refresh", func(t *testing.T) {
		t.Parallel()
		s, srv := newRefreshSandbox(t, "in-process")
		s.loginFile(srv, time.Now().Add(2*time.Hour))
		s.serveClients()
		srv.SetMode(oauthtest.ServerError)
		got := s.pythonClient(script)
		if fmt.Sprint(got["refresh"]) != "[refresh_failed 3 502 true]" {
			t.Errorf("refresh: %v; want refresh_failed, exit code 3, 502, a message", got["refresh"])
		}
		if _, ok := got["token"].([]any); ok {
			t.Errorf("token: %v; want the token, still valid", got["token"])
		}
	})
}
