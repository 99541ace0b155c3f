package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the real Claude Code client (the version pinned in
// .ci/npm/package.json, installed by .ci/run) headless against a fake
// Messages API on loopback, with its token from credhost: through
// `credhost exec` (environment and descriptor) and through apiKeyHelper.
// They skip when $CREDHOST_NODE_MODULES is unset (no client installed).

// fakeAnswer is what the fake API answers; the client prints it.
const fakeAnswer = "FAKE-ANSWER-from-loopback"

// claudeBinary is the client's native binary, or the test skips.
func claudeBinary(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CREDHOST_NODE_MODULES")
	if dir == "" {
		t.Skip("CREDHOST_NODE_MODULES is unset: the real Claude Code client is not installed (.ci/run installs it)")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the installed client is the linux-x64 binary; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	bin := filepath.Join(dir, "@anthropic-ai", "claude-code-linux-x64", "claude")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("CREDHOST_NODE_MODULES is set but the client is missing: %v", err)
	}
	return bin
}

// apiRequest is what the fake API saw of one request.
type apiRequest struct {
	Method, Path          string
	Authorization, APIKey string
	Beta                  string
	Status                int
}

// fakeAPI is a Messages API on loopback: POST /v1/messages answers
// fakeAnswer (streamed when asked), unless reject says no (401); HEAD /
// (the client's reachability probe) is 200; anything else 404.
type fakeAPI struct {
	*httptest.Server
	t *testing.T
	// reject, when set, is asked for each /v1/messages request's token;
	// it may wait (a server that is slow to answer) before saying.
	reject func(token string) bool

	mu   sync.Mutex
	seen []apiRequest
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := apiRequest{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), APIKey: r.Header.Get("X-Api-Key"), Beta: r.Header.Get("Anthropic-Beta")}
	defer func() {
		f.mu.Lock()
		f.seen = append(f.seen, req)
		f.mu.Unlock()
		f.t.Logf("fake API: %s %s -> %d", req.Method, r.URL.RequestURI(), req.Status)
	}()
	switch {
	case r.Method == http.MethodHead && r.URL.Path == "/":
		req.Status = http.StatusOK
		w.WriteHeader(req.Status)
		return
	case r.Method != http.MethodPost || r.URL.Path != "/v1/messages":
		req.Status = http.StatusNotFound
		writeAPIError(w, req.Status, "not_found_error", "not found")
		return
	}
	token := strings.TrimPrefix(req.Authorization, "Bearer ")
	if token == "" {
		token = req.APIKey
	}
	if f.reject != nil && f.reject(token) {
		req.Status = http.StatusUnauthorized
		writeAPIError(w, req.Status, "authentication_error", "OAuth token has expired.")
		return
	}
	var in struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	json.Unmarshal(body, &in)
	req.Status = http.StatusOK
	message := map[string]any{"id": "msg_fake", "type": "message", "role": "assistant", "model": in.Model,
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": map[string]int{"input_tokens": 1, "output_tokens": 1}}
	if !in.Stream {
		message["content"] = []any{map[string]string{"type": "text", "text": fakeAnswer}}
		message["stop_reason"] = "end_turn"
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(message)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, ev := range []struct {
		name string
		data any
	}{
		{"message_start", map[string]any{"type": "message_start", "message": message}},
		{"content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]string{"type": "text", "text": ""}}},
		{"content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]string{"type": "text_delta", "text": fakeAnswer}}},
		{"content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}},
		{"message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": map[string]int{"output_tokens": 3}}},
		{"message_stop", map[string]any{"type": "message_stop"}},
	} {
		data, _ := json.Marshal(ev.data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, data)
	}
}

func writeAPIError(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": map[string]string{"type": kind, "message": msg}})
}

// messages are the /v1/messages requests seen so far.
func (f *fakeAPI) messages() []apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiRequest
	for _, r := range f.seen {
		if r.Path == "/v1/messages" {
			out = append(out, r)
		}
	}
	return out
}

// clientEnv points the client at api, with everything that would leave
// the machine switched off and its config in the sandbox.
func (s *sandbox) clientEnv(api *fakeAPI) {
	s.setenv(
		"CLAUDE_CONFIG_DIR="+filepath.Join(s.home, ".claude"),
		"ANTHROPIC_BASE_URL="+api.URL,
		"DISABLE_TELEMETRY=1",
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	)
}

// runClient runs argv (credhost or the client itself) with a deadline.
func (s *sandbox) runClient(argv ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = s.env, s.home
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	s.t.Logf("%s took %s", filepath.Base(argv[0]), time.Since(start).Round(time.Millisecond))
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("run %s: %v", argv[0], err)
	}
	if ctx.Err() != nil {
		s.t.Fatalf("%s did not finish within 60s; stdout %q, stderr:\n%s", argv[0], stdout.String(), stderr.String())
	}
	return result{stdout.String(), stderr.String(), code}
}

// TestClaudeCodeThroughExec: the token credhost exec hands over arrives as
// Authorization: Bearer with the OAuth beta header, from the environment
// and from a descriptor, and the client prints the answer.
func TestClaudeCodeThroughExec(t *testing.T) {
	t.Parallel()
	claude := claudeBinary(t)
	for name, flags := range map[string][]string{"environment": nil, "descriptor": {"--fd"}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, srv := newRefreshSandbox(t, "in-process")
			api := newFakeAPI(t)
			s.clientEnv(api)
			access, _ := s.loginFile(srv, time.Now().Add(time.Hour))
			args := append([]string{credhostBin, "exec"}, flags...)
			r := s.runClient(append(args, "--", claude, "-p", "say hi")...)
			if r.code != 0 || !strings.Contains(r.stdout, fakeAnswer) {
				t.Fatalf("exit %d, stdout %q; want 0 and the fake answer\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			msgs := api.messages()
			if len(msgs) == 0 {
				t.Fatal("no request reached /v1/messages")
			}
			for _, m := range msgs {
				if m.Authorization != "Bearer "+access || m.APIKey != "" || !strings.Contains(m.Beta, "oauth-2025-04-20") {
					t.Errorf("request: Authorization %q, x-api-key %q, anthropic-beta %q; want Bearer and the file's token, no x-api-key, the oauth beta",
						redact(m.Authorization, access), m.APIKey, m.Beta)
				}
			}
		})
	}
}

// TestClaudeCodeThroughAPIKeyHelper: a gateway token served by
// `credhost token` as apiKeyHelper arrives both as x-api-key and as
// Authorization: Bearer, without the OAuth beta header (which is why an
// OAuth token does not belong there).
func TestClaudeCodeThroughAPIKeyHelper(t *testing.T) {
	t.Parallel()
	claude := claudeBinary(t)
	s := newSandbox(t)
	api := newFakeAPI(t)
	s.clientEnv(api)
	const gateway = "gateway-token-for-the-helper"
	// The gateway token comes from a variable only credhost reads.
	cfg := s.writeConfig("version: 1\nproviders:\n  - {name: gateway, plugin: env, config: {var: MY_GATEWAY_TOKEN}}\n")
	s.setenv("MY_GATEWAY_TOKEN=" + gateway)
	settings, _ := json.Marshal(map[string]string{"apiKeyHelper": fmt.Sprintf("'%s' token --config '%s'", credhostBin, cfg)})
	if err := os.MkdirAll(filepath.Join(s.home, ".claude"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.home, ".claude", "settings.json"), settings, 0o600); err != nil {
		t.Fatal(err)
	}
	r := s.runClient(claude, "-p", "say hi")
	if r.code != 0 || !strings.Contains(r.stdout, fakeAnswer) {
		t.Fatalf("exit %d, stdout %q; want 0 and the fake answer\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	msgs := api.messages()
	if len(msgs) == 0 {
		t.Fatal("no request reached /v1/messages")
	}
	for _, m := range msgs {
		if m.APIKey != gateway || m.Authorization != "Bearer "+gateway || strings.Contains(m.Beta, "oauth-") {
			t.Errorf("request: x-api-key %q, Authorization %q, anthropic-beta %q; want the gateway token in both and no oauth beta", m.APIKey, m.Authorization, m.Beta)
		}
	}
}

// TestClaudeCodeRecoversFromA401ThroughTheStore: the API rejects the token
// exec handed over; by then exec has refreshed the store ahead of expiry,
// and the client, re-reading .credentials.json on the 401, retries with
// the new token and prints the answer. One refresh, by credhost: the
// client never refreshes a token it got from credhost.
func TestClaudeCodeRecoversFromA401ThroughTheStore(t *testing.T) {
	t.Parallel()
	claude := claudeBinary(t)
	for name, flags := range map[string][]string{"environment": nil, "descriptor": {"--fd"}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, srv := newRefreshSandbox(t, "in-process")
			api := newFakeAPI(t)
			s.clientEnv(api)
			// The handed-over token enters the 2s buffer 1s after the start:
			// exec refreshes it then, while the client starts.
			s.setenv("CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS=2")
			first, _ := s.loginFile(srv, time.Now().Add(3*time.Second))
			api.reject = func(token string) bool {
				if token != first {
					return false
				}
				// Answer the 401 once the store holds another token (a
				// server does not answer before exec refreshed, here).
				deadline := time.Now().Add(20 * time.Second)
				for s.readCredentials().Access == first && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				return true
			}
			args := append([]string{credhostBin, "exec"}, flags...)
			r := s.runClient(append(args, "--", claude, "-p", "say hi")...)
			if r.code != 0 || !strings.Contains(r.stdout, fakeAnswer) {
				t.Fatalf("exit %d, stdout %q; want 0 and the fake answer after the 401\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			second := s.readCredentials().Access
			msgs := api.messages()
			if len(msgs) < 2 || msgs[0].Authorization != "Bearer "+first || msgs[0].Status != http.StatusUnauthorized ||
				msgs[len(msgs)-1].Authorization != "Bearer "+second || msgs[len(msgs)-1].Status != http.StatusOK {
				for _, m := range msgs {
					t.Logf("request: %s -> %d", redact(redact(m.Authorization, first), second), m.Status)
				}
				t.Errorf("want the first token rejected (401), then the store's new token accepted")
			}
			if srv.Requests() != 1 || srv.Reuses() != 0 {
				t.Errorf("%d refreshes, %d reuses; want exactly one, by credhost", srv.Requests(), srv.Reuses())
			}
		})
	}
}

// redact names a token instead of showing it.
func redact(s, token string) string {
	return strings.ReplaceAll(s, token, "<token "+token[len(token)-4:]+">")
}
