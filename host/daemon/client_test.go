package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/sdk"
)

// generous bounds a fallback that the client promises within its dial
// bound, on a machine busy with other tests.
const generous = 10 * time.Second

// socketPath is a socket path in a fresh directory, short enough for
// sun_path (t.TempDir can exceed its ~104 bytes on macOS).
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// standIn is a stand-in for `credhost serve`: a real HTTP server on a real
// unix socket that answers the wire contract from a script, for the
// client's own tests (the end-to-end tests in cmd/credhost run the real
// daemon).
type standIn struct {
	socket string
	chain  string

	mu        sync.Mutex
	headers   []http.Header // each request's, in order
	paths     []string
	bodies    []string
	token     Token
	refreshed Token
	fail      *Error // answer every token request with this
	failCode  int
	refreshes atomic.Int32
}

func newStandIn(t *testing.T, chain string) *standIn {
	t.Helper()
	s := &standIn{socket: socketPath(t), chain: chain}
	l, err := net.Listen("unix", s.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.headers = append(s.headers, r.Header.Clone())
	s.paths = append(s.paths, r.Method+" "+r.URL.Path)
	s.bodies = append(s.bodies, string(body))
	fail, failCode, tok, fresh, chain := s.fail, s.failCode, s.token, s.refreshed, s.chain
	s.mu.Unlock()
	answer := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	if r.URL.Path == PathHealth {
		answer(200, Health{Status: "ok", PID: 4242, Chain: chain, Config: "stand-in"})
		return
	}
	if c := r.Header.Get(ChainHeader); c != "" && c != chain {
		answer(409, Error{Error: "chain mismatch", Code: CodeChainMismatch, ExitCode: 2})
		return
	}
	if fail != nil {
		answer(failCode, fail)
		return
	}
	switch r.URL.Path {
	case PathToken:
		answer(200, tok)
	case PathRefresh:
		var req RefreshRequest
		json.Unmarshal(body, &req)
		if req.Rejected != "" && req.Rejected != tok.Fingerprint {
			answer(200, tok)
			return
		}
		s.refreshes.Add(1)
		s.mu.Lock()
		s.token = fresh
		s.mu.Unlock()
		answer(200, fresh)
	case PathStatus:
		in := host.Seconds(90 * time.Second)
		answer(200, Status{Providers: []host.ProviderStatus{{Name: "claude-file", Plugin: "file", State: host.StateFound, ExpiresIn: &in, Fingerprint: tok.Fingerprint}}})
	default:
		answer(404, Error{Error: "no such path", Code: CodeBadRequest, ExitCode: 2})
	}
}

func tokenOf(access string, expires time.Time) Token {
	return NewToken(host.Result{Credential: sdk.Credential{AccessToken: access, ExpiresAt: expires}, Provider: "claude-file"})
}

// unanswering are sockets where no daemon answers: none at all, one a
// killed daemon left, a listener that never accepts, one that accepts and
// never answers.
func unanswering() []struct {
	name   string
	socket func(t *testing.T) string
} {
	return []struct {
		name   string
		socket func(t *testing.T) string
	}{
		{"no socket file", func(t *testing.T) string { return socketPath(t) }},
		{"a socket file nobody listens on", func(t *testing.T) string {
			p := socketPath(t)
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false) // as a killed daemon leaves it
			l.Close()
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("the dead socket is gone: %v", err)
			}
			return p
		}},
		{"a listener that never answers", func(t *testing.T) string {
			p := socketPath(t)
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return p // connections wait in the backlog, never accepted
		}},
		{"a listener that accepts and never answers", func(t *testing.T) string {
			p := socketPath(t)
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var conns []net.Conn
			t.Cleanup(func() {
				l.Close()
				mu.Lock()
				defer mu.Unlock()
				for _, c := range conns {
					c.Close()
				}
			})
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}()
			return p
		}},
	}
}

func TestDialFallsBackWithinTheBound(t *testing.T) {
	t.Parallel()
	for _, tc := range unanswering() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.socket(t)
			start := time.Now()
			c, err := Dial(context.Background(), p, WithDialTimeout(200*time.Millisecond))
			took := time.Since(start)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded; want ErrUnavailable")
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("Dial: %v; want it to wrap ErrUnavailable", err)
			}
			if took > generous {
				t.Errorf("Dial took %v with a 200ms bound", took)
			}
		})
	}
}

func TestDialRefusesAnotherChain(t *testing.T) {
	t.Parallel()
	s := newStandIn(t, "daemon-chain")
	_, err := Dial(context.Background(), s.socket, WithChain("my-chain"))
	if !errors.Is(err, ErrChainMismatch) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Dial: %v; want ErrChainMismatch, an ErrUnavailable", err)
	}
	// Without a chain of its own (a launcher), the daemon's token is used.
	c, err := Dial(context.Background(), s.socket)
	if err != nil {
		t.Fatalf("Dial without a chain: %v", err)
	}
	defer c.Close()
	if got := c.Daemon(); got.PID != 4242 || got.Chain != "daemon-chain" {
		t.Errorf("Daemon() = %+v", got)
	}
}

// A daemon that changed its chain after Dial (a SIGHUP reload) answers 409
// to the header every request carries.
func TestClientSendsItsChainAndMapsTheMismatch(t *testing.T) {
	t.Parallel()
	s := newStandIn(t, "chain-a")
	s.token = tokenOf("tok-A", time.Now().Add(time.Hour))
	c, err := Dial(context.Background(), s.socket, WithChain("chain-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}
	s.mu.Lock()
	got := s.headers[len(s.headers)-1].Get(ChainHeader)
	s.chain = "chain-b"
	s.mu.Unlock()
	if got != "chain-a" {
		t.Errorf("the token request carried %s %q; want chain-a", ChainHeader, got)
	}
	_, err = c.Token(context.Background())
	if !errors.Is(err, ErrChainMismatch) {
		t.Errorf("Token after the daemon's chain changed: %v; want ErrChainMismatch", err)
	}
}

func TestClientMapsTheDaemonsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code   string
		status int
		want   error
	}{
		{CodeNoCredential, 404, host.ErrNoCredential},
		{CodeRefreshFailed, 502, host.ErrRefreshFailed},
		{CodeConfig, 500, host.ErrConfig},
		{CodeForbidden, 403, ErrUnavailable},
		{CodeBadRequest, 400, ErrUnavailable},
		{CodeInternal, 500, ErrUnavailable},
		{"a code of a later version", 500, ErrUnavailable},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			s := newStandIn(t, "")
			s.fail, s.failCode = &Error{Error: "what the daemon says", Code: tc.code, ExitCode: 3}, tc.status
			c, err := Dial(context.Background(), s.socket)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for name, call := range map[string]func() error{
				"Token":   func() error { _, err := c.Token(context.Background()); return err },
				"Refresh": func() error { _, err := c.Refresh(context.Background(), ""); return err },
				"Status":  func() error { _, err := c.Status(context.Background()); return err },
			} {
				err := call()
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: %v; want errors.Is %v", name, err, tc.want)
				}
				var re *ResponseError
				if !errors.As(err, &re) || re.Body.ExitCode != 3 || re.StatusCode != tc.status || err.Error() != "what the daemon says" {
					t.Errorf("%s: %#v; want a *ResponseError with the daemon's message, status and exit code", name, err)
				}
			}
		})
	}
}

func TestClientTokenRefreshStatus(t *testing.T) {
	t.Parallel()
	s := newStandIn(t, "c")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	s.token = tokenOf("tok-A", exp)
	s.refreshed = tokenOf("tok-B", exp.Add(time.Hour))
	c, err := Dial(context.Background(), s.socket, WithChain("c"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	tok, err := c.Token(ctx)
	if err != nil || tok.AccessToken != "tok-A" || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(exp) || tok.Fingerprint != sdk.Fingerprint("tok-A") {
		t.Fatalf("Token = %+v, %v", tok, err)
	}
	// A rejection of a token the daemon no longer holds refreshes nothing.
	if tok, err := c.Refresh(ctx, sdk.Fingerprint("older")); err != nil || tok.AccessToken != "tok-A" || s.refreshes.Load() != 0 {
		t.Fatalf("Refresh(older) = %+v, %v, %d refreshes", tok, err, s.refreshes.Load())
	}
	if tok, err := c.Refresh(ctx, tok.Fingerprint); err != nil || tok.AccessToken != "tok-B" || s.refreshes.Load() != 1 {
		t.Fatalf("Refresh(tok-A) = %+v, %v, %d refreshes", tok, err, s.refreshes.Load())
	}
	s.mu.Lock()
	body := s.bodies[len(s.bodies)-1]
	s.mu.Unlock()
	if want := `{"rejected":"` + sdk.Fingerprint("tok-A") + `"}`; body != want {
		t.Errorf("refresh body %s; want %s", body, want)
	}
	st, err := c.Status(ctx)
	if err != nil || len(st.Providers) != 1 || st.Providers[0].ExpiresIn == nil || time.Duration(*st.Providers[0].ExpiresIn) != 90*time.Second {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if h, err := c.Health(ctx); err != nil || h.Status != "ok" {
		t.Fatalf("Health = %+v, %v", h, err)
	}
}

// Token.Result is what Host.Token would have returned, degraded included.
func TestTokenResult(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	in := host.Result{Credential: sdk.Credential{AccessToken: "a", ExpiresAt: exp}, Provider: "p", Degraded: true, DegradedReason: errors.New("endpoint said no")}
	back := NewToken(in).Result()
	if back.Credential.AccessToken != "a" || !back.Credential.ExpiresAt.Equal(exp) || back.Provider != "p" || !back.Degraded || back.DegradedReason == nil || back.DegradedReason.Error() != "endpoint said no" {
		t.Errorf("Result() = %+v", back)
	}
	if r := NewToken(host.Result{Credential: sdk.Credential{AccessToken: "a"}}).Result(); !r.Credential.ExpiresAt.IsZero() || r.Degraded || r.DegradedReason != nil {
		t.Errorf("Result() of a token without expiry = %+v", r)
	}
}

// The Transport over the daemon keeps Host.Transport's behaviour: the
// daemon's token on each request, and on a 401 one refresh of the refused
// token (named by fingerprint) and one replay.
func TestDaemonTransportRefreshesOnceAndReplays(t *testing.T) {
	t.Parallel()
	s := newStandIn(t, "")
	s.token = tokenOf("tok-A", time.Now().Add(time.Hour))
	s.refreshed = tokenOf("tok-B", time.Now().Add(2*time.Hour))
	var seen []string
	var mu sync.Mutex
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+string(body))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok-B" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer api.Close()
	c, err := Dial(context.Background(), s.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hc := &http.Client{Transport: c.Transport(nil)}
	resp, err := hc.Post(api.URL, "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("answer %d %q; want 200 ok", resp.StatusCode, body)
	}
	if want := []string{"Bearer tok-A payload", "Bearer tok-B payload"}; strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("the API saw %q; want %q", seen, want)
	}
	if n := s.refreshes.Load(); n != 1 {
		t.Errorf("%d refreshes; want 1", n)
	}
}

// TestDialRefusesADaemonAnotherUserCouldHavePlanted: a socket whose
// directory another user could have made (the default one lives under the
// shared temporary directory when $XDG_RUNTIME_DIR is unset) is not asked,
// even when a daemon answers there with the caller's own chain: that
// daemon would hand out a token of its maker's choosing.
func TestDialRefusesADaemonAnotherUserCouldHavePlanted(t *testing.T) {
	t.Parallel()
	for name, plant := range map[string]func(t *testing.T, dir string){
		"directory open to everyone": func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		},
		"directory of another user": func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the directory away")
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStandIn(t, "chain-a")
			s.token = Token{AccessToken: "planted-token", Provider: "x"}
			plant(t, filepath.Dir(s.socket))
			c, err := Dial(context.Background(), s.socket, WithChain("chain-a"))
			if err == nil {
				tok, _ := c.Token(context.Background())
				c.Close()
				t.Fatalf("Dial trusted the planted daemon (it served %q)", tok.AccessToken)
			}
			if !errors.Is(err, ErrUntrusted) || !errors.Is(err, ErrUnavailable) {
				t.Errorf("Dial: %v; want ErrUntrusted (and so ErrUnavailable)", err)
			}
			s.mu.Lock()
			asked := len(s.paths)
			s.mu.Unlock()
			if asked != 0 {
				t.Errorf("the planted daemon was asked %d times; want never", asked)
			}
		})
	}
}

// TestDialWithoutASocketIsUnavailableNotUntrusted: no socket at all is the
// ordinary case of no daemon, not a warning.
func TestDialWithoutASocketIsUnavailableNotUntrusted(t *testing.T) {
	t.Parallel()
	_, err := Dial(context.Background(), socketPath(t))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUntrusted) {
		t.Errorf("Dial: %v; want ErrUnavailable, not ErrUntrusted", err)
	}
}

// WithChainOf computes the chain ID only when there is a socket to ask,
// and then acts as WithChain.
func TestDialComputesTheChainOnlyWithASocket(t *testing.T) {
	t.Parallel()
	calls := 0
	chainOf := func(id string) func() string { return func() string { calls++; return id } }
	if _, err := Dial(context.Background(), socketPath(t), WithChainOf(chainOf("my-chain"))); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Dial without a socket: %v; want ErrUnavailable", err)
	}
	if calls != 0 {
		t.Errorf("without a socket the chain ID was computed %d times; want none", calls)
	}
	s := newStandIn(t, "daemon-chain")
	if _, err := Dial(context.Background(), s.socket, WithChainOf(chainOf("my-chain"))); !errors.Is(err, ErrChainMismatch) {
		t.Fatalf("Dial to another chain: %v; want ErrChainMismatch", err)
	}
	c, err := Dial(context.Background(), s.socket, WithChainOf(chainOf("daemon-chain")))
	if err != nil {
		t.Fatalf("Dial to the same chain: %v", err)
	}
	defer c.Close()
	if calls != 2 {
		t.Errorf("the chain ID was computed %d times for two dials; want 2", calls)
	}
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}
	s.mu.Lock()
	got := s.headers[len(s.headers)-1].Get(ChainHeader)
	s.mu.Unlock()
	if got != "daemon-chain" {
		t.Errorf("the token request carried %s %q; want daemon-chain", ChainHeader, got)
	}
}
