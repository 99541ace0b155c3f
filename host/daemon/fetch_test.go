package daemon

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/sdk"
)

// FetchToken asks in one request, with the caller's chain: no health
// check before it.
func TestFetchTokenIsOneRequest(t *testing.T) {
	t.Parallel()
	s := newStandIn(t, "my-chain")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	s.token = tokenOf("tok-A", exp)
	tok, err := FetchToken(context.Background(), s.socket, WithChain("my-chain"))
	if err != nil || tok.AccessToken != "tok-A" || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(exp) || tok.Fingerprint != sdk.Fingerprint("tok-A") {
		t.Fatalf("FetchToken = %+v, %v", tok, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if want := []string{"GET " + PathToken}; strings.Join(s.paths, "|") != strings.Join(want, "|") {
		t.Errorf("the daemon was asked %q; want %q", s.paths, want)
	}
	if got := s.headers[0].Get(ChainHeader); got != "my-chain" {
		t.Errorf("the request carried %s %q; want my-chain", ChainHeader, got)
	}
}

// A daemon of another chain answers the token request 409: the caller
// gets ErrChainMismatch (an ErrUnavailable) and works directly, and the
// chain ID is computed only when there is a socket to ask.
func TestFetchTokenRefusesAnotherChain(t *testing.T) {
	t.Parallel()
	calls := 0
	chainOf := func() string { calls++; return "my-chain" }
	if _, err := FetchToken(context.Background(), socketPath(t), WithChainOf(chainOf)); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUntrusted) {
		t.Fatalf("FetchToken without a socket: %v; want ErrUnavailable, not ErrUntrusted", err)
	}
	if calls != 0 {
		t.Errorf("without a socket the chain ID was computed %d times; want none", calls)
	}
	s := newStandIn(t, "daemon-chain")
	s.token = tokenOf("daemons-token", time.Now().Add(time.Hour))
	tok, err := FetchToken(context.Background(), s.socket, WithChainOf(chainOf))
	if !errors.Is(err, ErrChainMismatch) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("FetchToken = %+v, %v; want ErrChainMismatch, an ErrUnavailable", tok, err)
	}
	if tok.AccessToken != "" {
		t.Errorf("another chain's token reached the caller")
	}
	if calls != 1 {
		t.Errorf("the chain ID was computed %d times; want 1", calls)
	}
}

// The daemon's errors come back as from Client.Token.
func TestFetchTokenMapsTheDaemonsErrors(t *testing.T) {
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
		{"a code of a later version", 500, ErrUnavailable},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			s := newStandIn(t, "")
			s.fail, s.failCode = &Error{Error: "what the daemon says", Code: tc.code, ExitCode: 3}, tc.status
			_, err := FetchToken(context.Background(), s.socket)
			var re *ResponseError
			if !errors.Is(err, tc.want) || !errors.As(err, &re) || re.Body.ExitCode != 3 || re.StatusCode != tc.status || err.Error() != "what the daemon says" {
				t.Errorf("FetchToken: %#v; want a *ResponseError with the daemon's message, status and exit code, errors.Is %v", err, tc.want)
			}
		})
	}
}

// Where no daemon answers, FetchToken gives up within its dial bound.
func TestFetchTokenFallsBackWithinTheBound(t *testing.T) {
	t.Parallel()
	for _, tc := range unanswering() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.socket(t)
			start := time.Now()
			_, err := FetchToken(context.Background(), p, WithDialTimeout(200*time.Millisecond), WithAnswerTimeout(time.Hour))
			if took := time.Since(start); took > generous {
				t.Errorf("FetchToken took %v with a 200ms bound", took)
			}
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUntrusted) {
				t.Errorf("FetchToken: %v; want ErrUnavailable", err)
			}
		})
	}
}

// An interrupt (the context ending) ends the wait at once, whatever the
// bounds.
func TestFetchTokenEndsWithItsContext(t *testing.T) {
	t.Parallel()
	p := unanswering()[3].socket(t) // accepts and never answers
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := FetchToken(ctx, p, WithDialTimeout(time.Hour), WithAnswerTimeout(time.Hour))
	if took := time.Since(start); took > generous {
		t.Errorf("FetchToken took %v after its context ended", took)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("FetchToken: %v; want ErrUnavailable wrapping context.Canceled", err)
	}
}

// slowDaemon answers a token request after delay, with an interim 102
// first when interim is set and the request asks for it, as credhost
// serve does when the token waits for a refresh.
func slowDaemon(t *testing.T, delay time.Duration, interim bool) string {
	t.Helper()
	p := socketPath(t)
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if interim && r.Header.Get(InterimHeader) == "102" {
			w.WriteHeader(http.StatusProcessing)
		}
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"tok-slow","provider":"claude-file","refreshed":true}`))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// A daemon that says it is working on the answer (an interim 102, sent
// when the token waits for a refresh) gets the answer bound, not the dial
// bound; one that says nothing within the dial bound is given up.
func TestFetchTokenWaitsForADaemonThatSaysItIsWorking(t *testing.T) {
	t.Parallel()
	const bound = 200 * time.Millisecond
	t.Run("interim answer", func(t *testing.T) {
		t.Parallel()
		p := slowDaemon(t, 4*bound, true)
		tok, err := FetchToken(context.Background(), p, WithDialTimeout(bound), WithAnswerTimeout(generous))
		if err != nil || tok.AccessToken != "tok-slow" || !tok.Refreshed {
			t.Fatalf("FetchToken = %+v, %v; want the daemon's token after its refresh", tok, err)
		}
	})
	t.Run("no interim answer", func(t *testing.T) {
		t.Parallel()
		p := slowDaemon(t, generous, false)
		start := time.Now()
		_, err := FetchToken(context.Background(), p, WithDialTimeout(bound), WithAnswerTimeout(generous))
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("FetchToken: %v; want ErrUnavailable", err)
		}
		if took := time.Since(start); took >= generous {
			t.Errorf("FetchToken waited %v, the whole answer", took)
		}
	})
	t.Run("interim answer, then silence past the answer bound", func(t *testing.T) {
		t.Parallel()
		p := slowDaemon(t, generous, true)
		_, err := FetchToken(context.Background(), p, WithDialTimeout(bound), WithAnswerTimeout(2*bound))
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("FetchToken: %v; want ErrUnavailable", err)
		}
	})
}

// A socket in a directory another user could have made is not asked.
func TestFetchTokenRefusesADaemonAnotherUserCouldHavePlanted(t *testing.T) {
	t.Parallel()
	s := newStandIn(t, "chain-a")
	s.token = Token{AccessToken: "planted-token", Provider: "x"}
	if err := os.Chmod(filepath.Dir(s.socket), 0o777); err != nil {
		t.Fatal(err)
	}
	tok, err := FetchToken(context.Background(), s.socket, WithChain("chain-a"))
	if !errors.Is(err, ErrUntrusted) || tok.AccessToken != "" {
		t.Fatalf("FetchToken = %q, %v; want ErrUntrusted", tok.AccessToken, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.paths) != 0 {
		t.Errorf("the planted daemon was asked %d times; want never", len(s.paths))
	}
}

// The server's interim answer: a request that asks for it and takes
// longer than interimAfter gets a 102 Processing first; a quick one, or
// one that did not ask (curl, Python's http.client, clients of earlier
// versions), none.
func TestServerSaysItIsWorkingOnASlowAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		takes   time.Duration
		ask     bool
		interim bool
	}{
		{"quick", 0, true, false},
		{"slow", 3 * interimAfter, true, true},
		{"slow, not asked for", 3 * interimAfter, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := socketPath(t)
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				working(w, r, func() { time.Sleep(tc.takes) })
				writeJSON(w, http.StatusOK, Token{AccessToken: "tok"})
			})}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
			conn, err := net.Dial("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(generous))
			req := "GET /v1/token HTTP/1.1\r\nHost: credhost\r\n"
			if tc.ask {
				req += InterimHeader + ": 102\r\n"
			}
			if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.StatusCode == http.StatusProcessing; got != tc.interim {
				t.Fatalf("first answer %d; want an interim 102: %v", resp.StatusCode, tc.interim)
			}
			if tc.interim {
				if resp, err = http.ReadResponse(br, nil); err != nil {
					t.Fatal(err)
				}
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("final answer %d; want 200", resp.StatusCode)
			}
		})
	}
}
