package host

import (
	"context"
	"github.com/credhost/credhost/host/hosttest"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiServer answers 401 to tokens in rejected, 200 otherwise, and records
// what it saw.
type apiServer struct {
	mu       sync.Mutex
	rejected map[string]bool
	auths    []string
	bodies   []string
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	defer a.mu.Unlock()
	auth := r.Header.Get("Authorization")
	a.auths = append(a.auths, auth)
	a.bodies = append(a.bodies, string(body))
	if !strings.HasPrefix(auth, "Bearer ") || a.rejected[strings.TrimPrefix(auth, "Bearer ")] {
		http.Error(w, `{"error":"OAuth token has expired"}`, http.StatusUnauthorized)
		return
	}
	io.WriteString(w, "ok")
}

func TestTransportRefreshesOnceOn401(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		rejectAll    bool // the API rejects the new token too
		noGetBody    bool // the body cannot be replayed
		wantStatus   int
		wantAPICalls int
		wantRefresh  int
	}{
		"401 then replay with the new token": {wantStatus: 200, wantAPICalls: 2, wantRefresh: 1},
		"still 401 after refresh: no loop":   {rejectAll: true, wantStatus: 401, wantAPICalls: 2, wantRefresh: 1},
		"unreplayable body: 401 returned":    {noGetBody: true, wantStatus: 401, wantAPICalls: 1, wantRefresh: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			seeded := r.seed(testNow.Add(time.Hour)) // valid by its expiry, yet revoked
			api := &apiServer{rejected: map[string]bool{seeded.AccessToken: true}}
			srv := httptest.NewServer(api)
			defer srv.Close()
			if tc.rejectAll {
				api.rejected = nil
				srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					api.mu.Lock()
					api.auths = append(api.auths, req.Header.Get("Authorization"))
					api.mu.Unlock()
					http.Error(w, "no", http.StatusUnauthorized)
				})
			}
			client := &http.Client{Transport: r.host.Transport(nil)}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(`{"prompt":"hi"}`))
			if tc.noGetBody {
				req.GetBody = nil
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d; want %d", resp.StatusCode, tc.wantStatus)
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			if len(api.auths) != tc.wantAPICalls {
				t.Fatalf("%d API calls; want %d", len(api.auths), tc.wantAPICalls)
			}
			if r.srv.Requests() != tc.wantRefresh {
				t.Errorf("%d token requests; want %d", r.srv.Requests(), tc.wantRefresh)
			}
			if api.auths[0] != "Bearer "+seeded.AccessToken {
				t.Errorf("first call did not carry the stored token")
			}
			if tc.wantAPICalls == 2 && !tc.rejectAll {
				if api.auths[1] != "Bearer "+r.store.get().AccessToken || api.auths[1] == api.auths[0] {
					t.Errorf("replay did not carry the refreshed, saved token")
				}
				if api.bodies[1] != `{"prompt":"hi"}` {
					t.Errorf("replayed body %q; want the original", api.bodies[1])
				}
			}
			if req.Header.Get("Authorization") != "" {
				t.Errorf("the caller's request was modified")
			}
		})
	}
}

// TestConcurrent401sShareTheNewToken: several requests in flight with one
// token all get a 401. The first forces the refresh; the others, arriving
// after it, must get the new token to replay with, whichever provider the
// token came from, including an env token refreshed through its store
// (borrow: the variable still holds the old token, the store the new one).
func TestConcurrent401sShareTheNewToken(t *testing.T) {
	t.Parallel()
	tests := map[string]rigOptions{
		"store token":                         {},
		"env token refreshed through a store": {envToken: seededToken, refreshWith: true},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, opts)
			seeded := r.seed(testNow.Add(time.Hour))
			if _, err := r.host.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			first, err := r.host.RefreshAfterUnauthorized(context.Background(), seeded.AccessToken)
			if err != nil || first.Credential.AccessToken == seeded.AccessToken {
				t.Fatalf("first 401: %v; want a new token", err)
			}
			for i := range 3 {
				again, err := r.host.RefreshAfterUnauthorized(context.Background(), seeded.AccessToken)
				if err != nil || again.Credential.AccessToken != first.Credential.AccessToken {
					t.Errorf("401 #%d on the old token: %v (same new token %v); want the new token", i+2, err, err == nil && again.Credential.AccessToken == first.Credential.AccessToken)
				}
			}
			if n := r.srv.Requests(); n != 1 {
				t.Errorf("%d token requests; want 1", n)
			}
		})
	}
}

// TestTransportSendsTheTokenOnlyToTheOriginalHost: a redirect from the API
// host to another host (or to plain http) must not carry the bearer token,
// neither on the hop nor on a 401 replay there; a redirect on the same
// host keeps it.
func TestTransportSendsTheTokenOnlyToTheOriginalHost(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		fromTLS   bool   // the API answers over https
		toAddr    string // where the redirect points ("": the API itself)
		toStatus  int    // what the target answers
		wantAuth  bool   // the target sees the token
		wantCalls int    // requests the target sees
	}{
		"same host keeps the token":           {toStatus: 200, wantAuth: true, wantCalls: 1},
		"other host gets none":                {toAddr: "127.0.0.2:0", toStatus: 200, wantCalls: 1},
		"other host's 401 refreshes nothing":  {toAddr: "127.0.0.2:0", toStatus: 401, wantCalls: 1},
		"https to http on the host gets none": {fromTLS: true, toAddr: "127.0.0.1:0", toStatus: 200, wantCalls: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			seeded := r.seed(testNow.Add(time.Hour))
			var mu sync.Mutex
			var targetAuths []string
			target := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				mu.Lock()
				targetAuths = append(targetAuths, req.Header.Get("Authorization"))
				mu.Unlock()
				w.WriteHeader(tc.toStatus)
			})
			var to string
			if tc.toAddr != "" {
				to = hosttest.ServeOn(t, tc.toAddr, false, target).URL + "/final"
			}
			var apiAuth string
			api := hosttest.ServeOn(t, "127.0.0.1:0", tc.fromTLS, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if req.URL.Path == "/final" {
					target(w, req)
					return
				}
				mu.Lock()
				apiAuth = req.Header.Get("Authorization")
				mu.Unlock()
				dest := to
				if dest == "" {
					dest = "/final"
				}
				http.Redirect(w, req, dest, http.StatusTemporaryRedirect)
			}))
			client := &http.Client{Transport: r.host.Transport(api.Client().Transport)}
			resp, err := client.Get(api.URL + "/v1/messages")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if apiAuth != "Bearer "+seeded.AccessToken {
				t.Errorf("the API itself got %q; want the token", apiAuth)
			}
			if len(targetAuths) != tc.wantCalls {
				t.Fatalf("the redirect target got %d requests; want %d", len(targetAuths), tc.wantCalls)
			}
			for _, got := range targetAuths {
				if (got != "") != tc.wantAuth || (tc.wantAuth && got != "Bearer "+seeded.AccessToken) {
					t.Errorf("the redirect target got Authorization %q; want the token: %v", got, tc.wantAuth)
				}
			}
			if n := r.srv.Requests(); n != 0 {
				t.Errorf("%d token requests; want none", n)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	tests := map[[2]string]bool{
		{"https://api.example/a", "https://api.example:443/b"}:    true,
		{"https://API.example/a", "https://api.example/b"}:        true,
		{"https://api.example/a", "http://api.example/a"}:         false,
		{"https://api.example:8443/", "http://api.example:8443/"}: false,
		{"https://api.example/", "https://api.example:8443/"}:     false,
		{"https://api.example/", "https://evil.example/"}:         false,
	}
	for pair, want := range tests {
		a, _ := url.Parse(pair[0])
		b, _ := url.Parse(pair[1])
		if got := sameOrigin(a, b); got != want {
			t.Errorf("sameOrigin(%s, %s) = %v; want %v", pair[0], pair[1], got, want)
		}
	}
}

// responseWithoutRequest is a fake base transport: it forwards to
// http.DefaultTransport but hands back responses without Response.Request,
// as a caching, recording or mocking layer may build them.
type responseWithoutRequest struct{}

func (responseWithoutRequest) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if resp != nil {
		resp.Request = nil
	}
	return resp, err
}

// TestTransportKeepsTheOriginWhateverTheBase: the token must stay with the
// original host even when the base transport does not say which request a
// redirect answered; the hop to another host (and a 401 there) gets no
// token and refreshes nothing.
func TestTransportKeepsTheOriginWhateverTheBase(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusOK, http.StatusUnauthorized} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			r.seed(testNow.Add(time.Hour))
			var mu sync.Mutex
			var seen []string
			other := hosttest.ServeOn(t, "127.0.0.2:0", false, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				mu.Lock()
				seen = append(seen, req.Header.Get("Authorization"))
				mu.Unlock()
				w.WriteHeader(status)
			}))
			api := hosttest.ServeOn(t, "127.0.0.1:0", false, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				http.Redirect(w, req, other.URL+"/elsewhere", http.StatusFound)
			}))
			client := &http.Client{Transport: r.host.Transport(responseWithoutRequest{})}
			resp, err := client.Get(api.URL + "/v1/messages")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 || seen[0] != "" {
				t.Errorf("the other host got Authorization %q; want one request without it", seen)
			}
			if n := r.srv.Requests(); n != 0 {
				t.Errorf("%d token requests; want none", n)
			}
		})
	}
}
