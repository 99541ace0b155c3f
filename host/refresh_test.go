package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
	"github.com/credhost/credhost/sdk/sdktest"
)

// fakeStore is an in-memory store (a fake: the real stores are tested end to
// end in cmd/credhost) that refreshes for real through sdk/oauth against an
// oauthtest endpoint. The host calls its Fake, whose fields newFakeStore
// sets to the store's own behaviour; a test replaces a field, or sets a
// hook, to inject a fault a real store cannot be made to have on demand: a
// failing Save, another process refreshing mid-way.
type fakeStore struct {
	sdktest.Fake

	mu       sync.Mutex
	cred     *sdk.Credential
	saves    int
	reads    atomic.Int64
	client   *oauth.Client
	oauthCfg sdk.OAuthConfig
	// beforeRPC runs inside Refresh before the token request.
	beforeRPC func()
	// afterRead runs after each Read: another process acting while the
	// host holds the store's locks, between its re-read and its refresh.
	afterRead func()
	// afterRPC runs inside Refresh after the token request, with its
	// context: a slow answer that uses up the refresh's time.
	afterRPC func(context.Context)
	// locks are the locks Info declares; infoErr makes Info fail.
	locks   []sdk.Lock
	infoErr error
}

// newFakeStore returns an empty store that can save and refresh.
func newFakeStore() *fakeStore {
	s := &fakeStore{}
	s.Fake = sdktest.Fake{
		InfoF: func(context.Context) (sdk.Info, error) {
			if s.infoErr != nil {
				return sdk.Info{}, s.infoErr
			}
			return sdk.Info{Name: "fake", CanSave: true, CanRefresh: true, Locks: s.locks}, nil
		},
		ConfigureF: func(_ context.Context, req sdk.ConfigureRequest) error {
			c, err := oauth.New(req.OAuth, oauth.WithNow(func() time.Time { return testNow }))
			if err != nil {
				return err
			}
			s.client, s.oauthCfg = c, req.OAuth
			return nil
		},
		ReadF: func(ctx context.Context) (sdk.Credential, error) {
			s.reads.Add(1)
			if s.afterRead != nil {
				defer s.afterRead()
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if err := ctx.Err(); err != nil {
				return sdk.Credential{}, err // as a plugin over gRPC does
			}
			if s.cred == nil {
				return sdk.Credential{}, fmt.Errorf("%w: fake store is empty", sdk.ErrNotFound)
			}
			return s.cred.Clone(), nil
		},
		SaveF: s.save,
		RefreshF: func(ctx context.Context, c sdk.Credential) (sdk.Credential, error) {
			if s.beforeRPC != nil {
				s.beforeRPC()
			}
			fresh, err := s.client.Refresh(ctx, c)
			if s.afterRPC != nil {
				s.afterRPC(ctx)
			}
			return fresh, err
		},
	}
	return s
}

// save stores c, as another process sharing the store would.
func (s *fakeStore) save(ctx context.Context, c sdk.Credential) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err // as a plugin over gRPC does
	}
	s.saves++
	c = c.Clone()
	s.cred = &c
	return nil
}

func (s *fakeStore) get() sdk.Credential {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cred == nil {
		return sdk.Credential{}
	}
	return s.cred.Clone()
}

// envLike is a read-only provider holding the token tok returns, like
// plugins/env: a fake whose token can follow the store's.
func envLike(tok func() string) sdktest.Fake {
	return sdktest.Fake{
		InfoF: func(context.Context) (sdk.Info, error) { return sdk.Info{Name: "envlike"}, nil },
		ReadF: func(context.Context) (sdk.Credential, error) {
			if t := tok(); t != "" {
				return sdk.Credential{AccessToken: t}, nil
			}
			return sdk.Credential{}, sdk.ErrNotFound
		},
	}
}

var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// refreshRig is a host over [env?] + a fake store, against a test endpoint.
type refreshRig struct {
	srv   *oauthtest.Server
	store *fakeStore
	host  *Host
	logs  *syncBuffer
	// seeded is the access token seed put in the store (under store.mu).
	seeded string
}

type rigOptions struct {
	// envToken, when set, puts an env provider before the store, holding
	// the token it returns: storeToken, seededToken or fixedToken.
	envToken    func(r *refreshRig) string
	refreshWith bool // the env provider names the store in refresh_with
	defaultExp  time.Duration
	// refreshTimeout, when set, is refresh.timeout.
	refreshTimeout time.Duration
}

// storeToken is the token the store holds now: it follows refreshes.
func storeToken(r *refreshRig) string { return r.store.get().AccessToken }

// seededToken is the token the store was seeded with: fixed, as a real
// variable is.
func seededToken(r *refreshRig) string {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	return r.seeded
}

// fixedToken is a token of the variable's own.
func fixedToken(tok string) func(*refreshRig) string {
	return func(*refreshRig) string { return tok }
}

func newRig(t *testing.T, o rigOptions) *refreshRig {
	t.Helper()
	r := &refreshRig{srv: oauthtest.NewServer(t), store: newFakeStore(), logs: &syncBuffer{}}
	cfg := testConfig(false)
	cfg.OAuth = OAuthConfig{TokenURL: r.srv.TokenURL(), ClientID: "client-1", Body: "json", DefaultExpiresIn: Duration(o.defaultExp)}
	if o.refreshTimeout > 0 {
		cfg.Refresh.Timeout = Duration(o.refreshTimeout)
	}
	builtins := map[string]Builtin{"store": {New: func() sdk.Provider { return r.store }}}
	if o.envToken != nil {
		pc := ProviderConfig{Name: "oauth-env", Plugin: "env"}
		if o.refreshWith {
			pc.RefreshWith = []string{"store"}
		}
		cfg.Providers = append(cfg.Providers, pc)
		builtins["env"] = Builtin{New: func() sdk.Provider {
			return envLike(func() string { return o.envToken(r) })
		}}
	}
	cfg.Providers = append(cfg.Providers, ProviderConfig{Name: "store", Plugin: "store"})
	logger := hclog.New(&hclog.LoggerOptions{Output: r.logs, Level: hclog.Trace})
	h, err := New(cfg, WithLogger(logger), WithBuiltins(builtins), WithNow(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r.host = h
	return r
}

// seed puts a fresh login into the store, expiring at exp (zero: unknown).
func (r *refreshRig) seed(exp time.Time) sdk.Credential {
	a, rt := r.srv.Issue()
	c := sdk.Credential{AccessToken: a, RefreshToken: rt, ExpiresAt: exp, Metadata: map[string]string{"subscriptionType": "max"}}
	r.store.mu.Lock()
	r.store.cred = &c
	r.seeded = a
	r.store.mu.Unlock()
	return c
}

func TestRefreshRules(t *testing.T) {
	t.Parallel()
	type want struct {
		requests  int
		refreshed bool
		degraded  string // substring of the reason; "" = not degraded
		sameToken bool   // the returned token is the seeded one
		saves     int
		expiry    time.Time // zero: not checked
		keepRT    bool      // the saved refresh token is the seeded one
		unsaved   bool      // a refreshed token does not reach the store
		token     string    // the token returned, when it is not the store's
		log       string    // substring the logs must hold
	}
	tests := map[string]struct {
		opts rigOptions
		exp  time.Time
		mode oauthtest.Mode
		// setup runs once the store is configured, before the Token call.
		setup func(t *testing.T, r *refreshRig)
		want  want
	}{
		"buffer: outside the buffer, no refresh": {
			exp:  testNow.Add(6 * time.Minute),
			want: want{sameToken: true},
		},
		"buffer: unknown expiry is assumed valid": {
			want: want{sameToken: true},
		},
		"buffer: inside the buffer, refreshed and saved": {
			exp:  testNow.Add(5 * time.Minute),
			want: want{requests: 1, refreshed: true, saves: 1, expiry: testNow.Add(time.Hour), log: "refreshed and saved"},
		},
		"buffer: expired, refreshed": {
			exp:  testNow.Add(-time.Hour),
			want: want{requests: 1, refreshed: true, saves: 1},
		},
		"keep-refresh-token: no refresh token in the answer keeps the old one": {
			exp: testNow.Add(-time.Minute), mode: oauthtest.NoRefreshToken,
			want: want{requests: 1, refreshed: true, saves: 1, keepRT: true},
		},
		"keep-refresh-token: no expires_in takes the configured default": {
			exp: testNow.Add(-time.Minute), mode: oauthtest.NoExpiresIn, opts: rigOptions{defaultExp: 8 * time.Hour},
			want: want{requests: 1, refreshed: true, saves: 1, expiry: testNow.Add(8 * time.Hour)},
		},
		"keep-refresh-token: missing access token is a failure": {
			exp: testNow.Add(-time.Minute), mode: oauthtest.MissingAccessToken,
			want: want{requests: 1, degraded: "no access_token", sameToken: true, keepRT: true, log: "degraded"},
		},
		"degrade: 500 degrades": {
			exp: testNow.Add(time.Minute), mode: oauthtest.ServerError,
			want: want{requests: 1, degraded: "HTTP 500", sameToken: true, keepRT: true},
		},
		"degrade: HTML degrades": {
			exp: testNow.Add(time.Minute), mode: oauthtest.HTML,
			want: want{requests: 1, degraded: "HTML", sameToken: true, keepRT: true},
		},
		"degrade: invalid_grant with the store unchanged says log in again": {
			exp: testNow.Add(time.Minute),
			setup: func(t *testing.T, r *refreshRig) {
				// The refresh token was used elsewhere and the result lost.
				c := r.store.get()
				if _, err := r.store.client.Refresh(context.Background(), c); err != nil {
					t.Fatalf("the refresh elsewhere: %v", err)
				}
			},
			want: want{requests: 1, degraded: "log in again", sameToken: true, keepRT: true},
		},
		"degrade: invalid_grant after another process rotated: its token wins": {
			exp: testNow.Add(time.Minute),
			setup: func(t *testing.T, r *refreshRig) {
				// Another process refreshes and saves between our re-read
				// and our request.
				r.store.beforeRPC = func() {
					r.store.beforeRPC = nil
					fresh, err := r.store.client.Refresh(context.Background(), r.store.get())
					if err != nil {
						t.Errorf("the other process's refresh: %v", err) // not t.Fatal: the host's goroutine
						return
					}
					r.store.Save(context.Background(), fresh)
				}
			},
			want: want{requests: 2, saves: 1, log: "rotated by another process"},
		},
		"save-failure: save fails, the new token is still returned": {
			exp: testNow.Add(time.Minute),
			setup: func(t *testing.T, r *refreshRig) {
				r.store.SaveF = func(context.Context, sdk.Credential) error { return errors.New("disk full") }
			},
			want: want{requests: 1, refreshed: true, keepRT: true, unsaved: true, log: "saving the new token failed"},
		},
		"borrow: env token equal to the store's borrows its expiry and refreshes through it": {
			opts: rigOptions{envToken: storeToken, refreshWith: true}, exp: testNow.Add(time.Minute),
			want: want{requests: 1, refreshed: true, saves: 1, log: "borrowed expiry"},
		},
		"borrow: env token different from the store's is used as is": {
			opts: rigOptions{envToken: fixedToken("env-token-of-its-own"), refreshWith: true}, exp: testNow.Add(-time.Hour),
			want: want{token: "env-token-of-its-own", log: "holds a different token"},
		},
		"enterprise-never-refreshed: env token without refresh_with is never refreshed": {
			opts: rigOptions{envToken: storeToken}, exp: testNow.Add(-time.Hour),
			want: want{sameToken: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tc.opts)
			seeded := r.seed(tc.exp)
			// Configure the store (and its OAuth client) before setup runs.
			if _, err := r.host.member("store").provider(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, r)
			}
			r.srv.SetMode(tc.mode)
			before := r.srv.Requests()
			res, err := r.host.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			w := tc.want
			if got := r.srv.Requests() - before; got != w.requests {
				t.Errorf("%d token requests; want %d", got, w.requests)
			}
			if res.Refreshed != w.refreshed {
				t.Errorf("Refreshed = %v; want %v", res.Refreshed, w.refreshed)
			}
			if (w.degraded != "") != res.Degraded || (w.degraded != "" && !strings.Contains(fmt.Sprint(res.DegradedReason), w.degraded)) {
				t.Errorf("Degraded = %v (%v); want reason containing %q", res.Degraded, res.DegradedReason, w.degraded)
			}
			if same := res.Credential.AccessToken == seeded.AccessToken; same != w.sameToken {
				t.Errorf("returned the seeded token = %v; want %v", same, w.sameToken)
			}
			if w.token != "" && res.Credential.AccessToken != w.token {
				t.Errorf("returned token %s; want %s", res.Credential.Fingerprint(), sdk.Fingerprint(w.token))
			}
			if res.Credential.AccessToken == "" {
				t.Errorf("empty access token returned")
			}
			r.store.mu.Lock()
			saves := r.store.saves
			r.store.mu.Unlock()
			if saves != w.saves {
				t.Errorf("%d saves; want %d", saves, w.saves)
			}
			if !w.expiry.IsZero() && !res.Credential.ExpiresAt.Equal(w.expiry) {
				t.Errorf("expiry %v; want %v", res.Credential.ExpiresAt, w.expiry)
			}
			stored := r.store.get()
			if w.keepRT && stored.RefreshToken != seeded.RefreshToken && res.Credential.RefreshToken != seeded.RefreshToken {
				t.Errorf("the refresh token was replaced or lost; want the seeded one kept")
			}
			if stored.RefreshToken == "" || stored.AccessToken == "" {
				t.Errorf("the store lost its tokens")
			}
			if w.refreshed && !w.unsaved && stored.AccessToken != res.Credential.AccessToken {
				t.Errorf("the refreshed token was not saved to the store")
			}
			if w.unsaved && stored.AccessToken != seeded.AccessToken {
				t.Errorf("the store's token changed; want the seeded one kept when the save fails")
			}
			if stored.Metadata["subscriptionType"] != "max" {
				t.Errorf("store metadata lost: %v", stored.Metadata)
			}
			if w.log != "" && !strings.Contains(r.logs.String(), w.log) {
				t.Errorf("logs lack %q:\n%s", w.log, r.logs.String())
			}
			if out := r.logs.String(); strings.Contains(out, "test-access-") || strings.Contains(out, "test-refresh-") {
				t.Errorf("a token appears in the logs:\n%s", out)
			}
		})
	}
}

func TestCachedTokenNeedsNoProviderCall(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.seed(testNow.Add(time.Hour))
	for range 5 {
		if _, err := r.host.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.store.reads.Load(); n != 1 {
		t.Errorf("%d Reads for 5 Token calls; want 1 (the rest from the cache)", n)
	}
}

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.seed(testNow.Add(-time.Minute))
	r.srv.Delay = 100 * time.Millisecond
	const callers = 1000
	var wg sync.WaitGroup
	tokens := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			res, err := r.host.Token(context.Background())
			tokens[i], errs[i] = res.Credential.AccessToken, err
		})
	}
	wg.Wait()
	if n := r.srv.Requests(); n != 1 {
		t.Errorf("%d token requests from %d concurrent callers; want 1", n, callers)
	}
	if r.srv.Reuses() != 0 {
		t.Errorf("the server saw %d refresh-token reuses", r.srv.Reuses())
	}
	for i := range callers {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Fatalf("caller %d: err %v, same token %v; want every caller to get the one new token", i, errs[i], tokens[i] == tokens[0])
		}
	}
}

// TestConcurrentCallersShareOneWalk: callers that find no cached token
// while a walk is under way wait for it instead of each walking the chain
// (and reading every store) themselves.
func TestConcurrentCallersShareOneWalk(t *testing.T) {
	t.Parallel()
	readsFor := func(callers int) int64 {
		r := newRig(t, rigOptions{})
		r.seed(testNow.Add(-time.Minute))
		r.srv.Delay = 100 * time.Millisecond
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				if _, err := r.host.Token(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := r.srv.Requests(); n != 1 {
			t.Errorf("%d callers: %d token requests; want 1", callers, n)
		}
		return r.store.reads.Load()
	}
	one, many := readsFor(1), readsFor(200)
	if many != one {
		t.Errorf("200 concurrent callers read the store %d times, one caller %d; want the same (one shared walk)", many, one)
	}
}

// TestTokenCallerLeavesWhenItsContextEnds: a caller waiting on a walk
// another caller started returns when its own context ends; the walk goes
// on for the others.
func TestTokenCallerLeavesWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.seed(testNow.Add(-time.Minute))
	r.srv.Delay = 500 * time.Millisecond
	first := make(chan error, 1)
	go func() {
		_, err := r.host.Token(context.Background())
		first <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.host.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a caller whose context ended: %v; want context.DeadlineExceeded", err)
	}
	if err := <-first; err != nil {
		t.Errorf("the caller that waited: %v", err)
	}
	if n := r.srv.Requests(); n != 1 {
		t.Errorf("%d token requests; want 1", n)
	}
}

func TestRetryAfterHoldsOff(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.seed(testNow.Add(time.Minute))
	r.srv.SetMode(oauthtest.TooManyRequests)
	for range 3 {
		res, err := r.host.Token(context.Background())
		if err != nil || !res.Degraded {
			t.Fatalf("Token: %v, degraded %v; want a degraded token", err, res.Degraded)
		}
	}
	if n := r.srv.Requests(); n != 1 {
		t.Errorf("%d requests within the Retry-After window; want 1", n)
	}
}

func TestForcedRefresh(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	seeded := r.seed(testNow.Add(time.Hour))
	res, err := r.host.Refresh(context.Background())
	if err != nil || !res.Refreshed || res.Credential.AccessToken == seeded.AccessToken {
		t.Fatalf("Refresh: %v, refreshed %v; want a new token", err, res.Refreshed)
	}
	if r.store.get().AccessToken != res.Credential.AccessToken {
		t.Errorf("forced refresh not saved")
	}

	ro := newRig(t, rigOptions{envToken: fixedToken("env-only")})
	ro.seed(testNow.Add(time.Hour))
	_, err = ro.host.Refresh(context.Background())
	if !errors.Is(err, ErrRefreshFailed) || !strings.Contains(err.Error(), `provider "oauth-env" cannot refresh`) {
		t.Errorf("Refresh of a read-only token: %v; want ErrRefreshFailed naming oauth-env", err)
	}
}

// TestRefreshTimeoutFromConfig: every refresh.timeout the loader accepts
// must allow a refresh. 0 passes validation (a duration >= 0), and means
// "no refresh-specific bound" (as callContextFor reads it), not "give up at
// once".
func TestRefreshTimeoutFromConfig(t *testing.T) {
	t.Parallel()
	for _, timeout := range []string{"0", "10s"} {
		t.Run(timeout, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseConfig([]byte("version: 1\nrefresh: {timeout: "+timeout+"}\n"+minimal[11:]), "t", nil)
			if err != nil {
				t.Fatalf("refresh.timeout %s: %v", timeout, err)
			}
			r := newRig(t, rigOptions{})
			r.host.cfg.Refresh.Timeout = cfg.Refresh.Timeout
			seeded := r.seed(testNow.Add(-time.Minute))
			res, err := r.host.Token(context.Background())
			if err != nil || res.Degraded || !res.Refreshed {
				t.Fatalf("Token: %v, degraded %v (%v); want a refreshed token", err, res.Degraded, res.DegradedReason)
			}
			if got := r.store.get(); got.AccessToken != res.Credential.AccessToken || got.RefreshToken == seeded.RefreshToken {
				t.Errorf("the refreshed token was not saved")
			}
		})
	}
}

// slowAnswers are the two timings of a token endpoint's answer: well in
// time, and as the refresh's time runs out (slow: the store's Refresh
// returns only once its context has ended).
var slowAnswers = map[string]struct {
	timeout time.Duration
	slow    bool
}{
	"answer in time":                      {timeout: 10 * time.Second},
	"answer as the refresh time runs out": {timeout: 200 * time.Millisecond, slow: true},
}

// TestSlowAnswerStillSaved: once the token endpoint has answered, the old
// refresh token is spent (rotation); the new one must reach the store even
// when the answer used up the refresh's time (a long lock wait, a slow
// endpoint). Otherwise the store keeps the spent token, and the next
// process to refresh presents it again: reuse, and the family is revoked.
func TestSlowAnswerStillSaved(t *testing.T) {
	t.Parallel()
	for name, tc := range slowAnswers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			r.host.cfg.Refresh.Timeout = Duration(tc.timeout)
			seeded := r.seed(testNow.Add(-time.Minute))
			if tc.slow {
				r.store.afterRPC = func(ctx context.Context) { <-ctx.Done() }
			}
			res, err := r.host.Token(context.Background())
			if err != nil || !res.Refreshed {
				t.Fatalf("Token: %v, refreshed %v; want the new token", err, res.Refreshed)
			}
			stored := r.store.get()
			if stored.RefreshToken == seeded.RefreshToken || stored.AccessToken != res.Credential.AccessToken {
				t.Fatalf("the store still holds the spent refresh token; want the rotated one saved")
			}
			// Another process refreshing from the store must not be a reuse.
			if _, err := r.store.client.Refresh(context.Background(), stored); err != nil || r.srv.Reuses() != 0 {
				t.Errorf("refresh from the store: %v, %d reuses; want it to work", err, r.srv.Reuses())
			}
		})
	}
}

// TestSlowInvalidGrantStillRereadsTheStore: the degrade rule's re-read after an
// invalid_grant must happen even when the answer used up the refresh's time;
// otherwise a token another process rotated in is reported as "log in
// again".
func TestSlowInvalidGrantStillRereadsTheStore(t *testing.T) {
	t.Parallel()
	for name, tc := range slowAnswers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			r.host.cfg.Refresh.Timeout = Duration(tc.timeout)
			r.seed(testNow.Add(-time.Minute))
			if _, err := r.host.member("store").provider(context.Background()); err != nil {
				t.Fatal(err)
			}
			var rotated sdk.Credential
			r.store.beforeRPC = func() {
				// Another process (one that takes no lock) refreshes and
				// saves between our re-read and our request.
				r.store.beforeRPC = nil
				fresh, err := r.store.client.Refresh(context.Background(), r.store.get())
				if err != nil {
					t.Errorf("the other process's refresh: %v", err) // not t.Fatal: the host's goroutine
					return
				}
				rotated = fresh
				r.store.Save(context.Background(), fresh)
			}
			if tc.slow {
				r.store.afterRPC = func(ctx context.Context) { <-ctx.Done() }
			}
			res, err := r.host.Token(context.Background())
			if err != nil || res.Degraded {
				t.Fatalf("Token: %v, degraded %v (%v); want the token the other process saved", err, res.Degraded, res.DegradedReason)
			}
			if res.Credential.AccessToken != rotated.AccessToken {
				t.Errorf("returned a token other than the one the other process saved")
			}
		})
	}
}

func TestShortLivedTokenWarns(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.srv.ExpiresIn = time.Minute // shorter than the 5m buffer
	r.seed(testNow.Add(-time.Minute))
	if _, err := r.host.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.logs.String(), "expires within the refresh buffer") {
		t.Errorf("no warning that a 1m token is inside the 5m buffer:\n%s", r.logs.String())
	}
}

// A forced refresh that fails returns an error saying why, and no token: it
// must not also warn that it returns the token as it is (degraded), which
// `credhost refresh` would print before exiting 3 without one.
func TestFailedForcedRefreshDoesNotWarnOfADegradedToken(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.seed(testNow.Add(time.Hour))
	r.srv.SetMode(oauthtest.ServerError)
	if _, err := r.host.Refresh(context.Background()); !errors.Is(err, ErrRefreshFailed) {
		t.Fatalf("Refresh: %v; want ErrRefreshFailed", err)
	}
	if out := r.logs.String(); strings.Contains(out, "returning it as it is") {
		t.Errorf("a failed forced refresh warned of a degraded token:\n%s", out)
	}
	// Token still warns of the degraded token it returns.
	r.seed(testNow.Add(time.Minute))
	if res, err := r.host.Token(context.Background()); err != nil || !res.Degraded {
		t.Fatalf("Token: %v, degraded %v; want a degraded token", err, res.Degraded)
	}
	if out := r.logs.String(); !strings.Contains(out, "returning it as it is (degraded)") {
		t.Errorf("a degraded token was not warned of:\n%s", out)
	}
}
