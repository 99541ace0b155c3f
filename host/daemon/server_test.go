package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// These tests run the server in the test process, so the race detector
// sees it (the daemon's behaviour end to end, with real stores and the
// rotating endpoint, is tested on the real binary in cmd/credhost). The
// store is a fake holding a token of its own: what it serves is all that
// matters here.

// tokenHost is a host over one provider whose token tok returns.
func tokenHost(t *testing.T, tok func() string) *host.Host {
	t.Helper()
	cfg := host.DefaultConfig()
	cfg.Source = "test"
	cfg.Providers = []host.ProviderConfig{{Name: "p", Plugin: "fake"}}
	b := map[string]host.Builtin{"fake": {New: func() sdk.Provider {
		return sdktest.Fake{ReadF: func(context.Context) (sdk.Credential, error) {
			return sdk.Credential{AccessToken: tok(), ExpiresAt: time.Now().Add(3 * time.Hour)}, nil
		}}
	}}}
	h, err := host.New(cfg, host.WithBuiltins(b))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// serveIn starts a server on a socket in a private directory; it stops
// when the test ends.
func serveIn(t *testing.T, srv *Server) (*http.Client, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "chd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "credhost.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 10*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the socket is still there after Serve returned: %v", err)
		}
	})
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	return c, path
}

func getToken(t *testing.T, c *http.Client) Token {
	t.Helper()
	resp, err := c.Get("http://credhost" + PathToken)
	if err != nil {
		t.Error(err)
		return Token{}
	}
	defer resp.Body.Close()
	var tok Token
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&tok) != nil {
		t.Errorf("GET %s: %d", PathToken, resp.StatusCode)
	}
	return tok
}

// TestServerReloadWhileServing: requests in flight while the host is
// replaced are all answered, by the old host or the new one, and the new
// one serves afterwards; the old host is closed.
func TestServerReloadWhileServing(t *testing.T) {
	t.Parallel()
	srv := NewServer(Options{Host: tokenHost(t, func() string { return "token-old" }), Staleness: 10 * time.Millisecond})
	c, _ := serveIn(t, srv)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := range 50 {
		wg.Go(func() {
			if tok := getToken(t, c); tok.AccessToken != "token-old" && tok.AccessToken != "token-new" {
				bad.Add(1)
			}
		})
		if i == 25 {
			srv.Reload(tokenHost(t, func() string { return "token-new" }))
		}
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d requests got neither host's token", bad.Load())
	}
	if tok := getToken(t, c); tok.AccessToken != "token-new" {
		t.Errorf("after the reload: %q", tok.AccessToken)
	}
}

// TestServerFollowsAChangedStore: the background re-read serves a token
// the store changed to, and from memory in between.
func TestServerFollowsAChangedStore(t *testing.T) {
	t.Parallel()
	var cur atomic.Value
	cur.Store("token-1")
	srv := NewServer(Options{Host: tokenHost(t, func() string { return cur.Load().(string) }), Staleness: 20 * time.Millisecond})
	c, _ := serveIn(t, srv)
	if tok := getToken(t, c); tok.AccessToken != "token-1" {
		t.Fatalf("first token %q", tok.AccessToken)
	}
	cur.Store("token-2")
	deadline := time.Now().Add(10 * time.Second)
	for getToken(t, c).AccessToken != "token-2" {
		if time.Now().After(deadline) {
			t.Fatal("the changed store is not served")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestListenRefusesASecondDaemonAndNamesIt: the second Listen on one
// socket gets a *BusyError with this process's pid.
func TestListenRefusesASecondDaemonAndNamesIt(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "chd-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "credhost.sock")
	first, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Listen(path)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.PID != os.Getpid() || !strings.Contains(err.Error(), path) {
		t.Errorf("second Listen: %v; want a BusyError naming pid %d and the socket", err, os.Getpid())
	}
	first.Close()
	again, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen after the first closed: %v", err)
	}
	again.Close()
}

// TestServerStopsServingALoggedOutToken: once the store holds nothing
// (the user logged out), the old token is no longer served.
func TestServerStopsServingALoggedOutToken(t *testing.T) {
	t.Parallel()
	var out atomic.Bool
	cfg := host.DefaultConfig()
	cfg.Source = "test"
	cfg.Providers = []host.ProviderConfig{{Name: "p", Plugin: "fake"}}
	b := map[string]host.Builtin{"fake": {New: func() sdk.Provider {
		return sdktest.Fake{ReadF: func(context.Context) (sdk.Credential, error) {
			if out.Load() {
				return sdk.Credential{}, sdk.ErrNotFound
			}
			return sdk.Credential{AccessToken: "token-1", ExpiresAt: time.Now().Add(3 * time.Hour)}, nil
		}}
	}}}
	h, err := host.New(cfg, host.WithBuiltins(b))
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Options{Host: h, Staleness: 20 * time.Millisecond})
	c, _ := serveIn(t, srv)
	if tok := getToken(t, c); tok.AccessToken != "token-1" {
		t.Fatalf("first token %q", tok.AccessToken)
	}
	out.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("http://credhost" + PathToken)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after the logout", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
