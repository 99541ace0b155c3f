package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/credhost/credhost/sdk"
)

// T is what a check reports to: *testing.T satisfies it, and RunChecks
// brings its own, so a program runs the checks without the testing
// package. Fatalf and Skipf end the check (runtime.Goexit), so a check
// calls them only from the goroutine it runs in.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Factory returns a provider whose store holds s.Seed, or nothing when
// s.Seed is nil, configured with s.OAuth as its shared oauth block (use
// s.Configure). Each call must get a store of its own (use t.TempDir()).
// A store that cannot hold every field (an environment variable holds only
// a token) keeps what it can; the checks compare only the access token of
// a seed.
type Factory func(t T, s Setup) sdk.Provider

// Setup is what a Factory builds one provider from.
type Setup struct {
	// Seed is the credential the store holds; nil means an empty store.
	Seed *sdk.Credential
	// OAuth is the shared oauth block (sdk.ConfigureRequest.OAuth): the
	// refresh tests point it at a rotating test token endpoint; the other
	// checks leave it zero (no token endpoint).
	OAuth sdk.OAuthConfig

	// timeout bounds Configure; 0 is DefaultCallTimeout.
	timeout time.Duration
	// probe, when set, makes Configure add unknownKey to the config and
	// record the outcome rather than fail (the configure-strict check).
	probe *configureProbe
	// seedIfCan lets a factory that can fill a store only through Save
	// hand back an empty store when the provider cannot save.
	seedIfCan bool
}

// configureProbe records what Configure did with a config holding an
// unknown key.
type configureProbe struct {
	called bool
	err    error
}

// unknownKey is the key the configure-strict check adds to a config.
const unknownKey = "credhost_check_unknown_key"

// Configure configures p with the config block configJSON (a JSON object)
// and s.OAuth, and fails the check on error.
func (s Setup) Configure(t T, p sdk.Provider, name, configJSON string) sdk.Provider {
	t.Helper()
	if s.probe != nil {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(configJSON), &obj); err != nil || obj == nil {
			t.Fatalf("the config of %s is not a JSON object: %s", name, configJSON)
		}
		obj[unknownKey] = json.RawMessage("true")
		b, _ := json.Marshal(obj)
		configJSON = string(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), orDefault(s.timeout))
	defer cancel()
	err := p.Configure(ctx, sdk.ConfigureRequest{Name: name, Config: []byte(configJSON), OAuth: s.OAuth})
	if s.probe != nil {
		s.probe.called, s.probe.err = true, err
		return p
	}
	if err != nil {
		t.Fatalf("Configure %s: %v", name, timedOut(ctx, "Configure", s.timeout, err))
	}
	return p
}

// Suite is what the checks run against.
type Suite struct {
	// New builds each provider a check uses.
	New Factory
	// CallTimeout bounds each call; 0 is DefaultCallTimeout.
	CallTimeout time.Duration
}

// Check is one named conformance check.
type Check struct {
	// Name is short and stable ("read-empty"): the subtest's name and the
	// word `credhost plugin check` prints.
	Name string
	// What says in one line what passing proves.
	What string
	// Run runs the check.
	Run func(t T, s Suite)
}

// Checks returns the conformance checks, in the order they run. The
// refresh checks (sdktest.RunRefresh) need a test token endpoint and are
// not among them.
func Checks() []Check {
	return []Check{
		{"info", "Info names the plugin and declares only locks a host can take", checkInfo},
		{"configure-strict", "Configure refuses a config with an unknown key, naming it", checkConfigureStrict},
		{"read-empty", "Read on an empty store is not-found", checkReadEmpty},
		{"read-seeded", "Read on a filled store returns its token", checkReadSeeded},
		{"save-read", "Save then Read round-trips every field and the metadata", checkSaveRead},
		{"unsupported", "Save and Refresh say Unsupported where Info says the plugin cannot", checkUnsupported},
		{"concurrent-reads", "concurrent Reads are safe and agree", checkConcurrentReads},
		{"deadline", "a Read whose deadline passes ends with the deadline error, and the plugin answers the next", checkDeadline},
	}
}

func orDefault(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return DefaultCallTimeout
}

func (s Suite) setup(seed *sdk.Credential) Setup {
	return Setup{Seed: seed, timeout: s.CallTimeout}
}

// call runs f bounded by the call timeout; a call that did not answer in
// time says so.
func call[V any](s Suite, op string, f func(context.Context) (V, error)) (V, error) {
	ctx, cancel := context.WithTimeout(context.Background(), orDefault(s.CallTimeout))
	defer cancel()
	v, err := f(ctx)
	return v, timedOut(ctx, op, s.CallTimeout, err)
}

// timedOut replaces err with "did not answer" when ctx's deadline passed
// or the plugin says it ran out of time (DEADLINE_EXCEEDED), or gRPC says
// CANCELLED at the deadline (the plugin's side, whose copy of the deadline
// may run out a moment sooner, reset the stream first).
func timedOut(ctx context.Context, op string, d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	dl, _ := ctx.Deadline()
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.Is(err, context.Canceled) && time.Until(dl) < 100*time.Millisecond) {
		return fmt.Errorf("%s did not answer within %s", op, orDefault(d))
	}
	return err
}

func (s Suite) info(t T, p sdk.Provider) sdk.Info {
	t.Helper()
	info, err := call(s, "Info", p.Info)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return info
}

func (s Suite) read(p sdk.Provider) (sdk.Credential, error) {
	return call(s, "Read", p.Read)
}

func (s Suite) save(p sdk.Provider, c sdk.Credential) error {
	_, err := call(s, "Save", func(ctx context.Context) (struct{}, error) { return struct{}{}, p.Save(ctx, c) })
	return err
}

func (s Suite) mustRead(t T, p sdk.Provider) sdk.Credential {
	t.Helper()
	c, err := s.read(p)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return c
}

func checkInfo(t T, s Suite) {
	p := s.New(t, s.setup(nil))
	info := s.info(t, p)
	if info.Name == "" {
		t.Errorf("Info().Name is empty; want the plugin's name")
	}
	checkLocks(t, info)
	checkProviderLocks(t, p, info)
}

func checkConfigureStrict(t T, s Suite) {
	probe := &configureProbe{}
	st := s.setup(nil)
	st.probe = probe
	s.New(t, st)
	switch {
	case !probe.called:
		t.Skipf("the factory configures its provider without Setup.Configure")
	case probe.err == nil:
		t.Errorf("Configure accepted a config with the unknown key %q; want it refused with invalid-config (sdk.ErrInvalidConfig, gRPC INVALID_ARGUMENT): a misspelt key must not be ignored", unknownKey)
	case !errors.Is(probe.err, sdk.ErrInvalidConfig):
		t.Errorf("Configure with the unknown key %q: got %v; want invalid-config (sdk.ErrInvalidConfig, gRPC INVALID_ARGUMENT)", unknownKey, probe.err)
	case !strings.Contains(probe.err.Error(), unknownKey):
		t.Errorf("Configure refused the unknown key %q with %q, which does not name it", unknownKey, probe.err)
	}
}

// emptyToken is what a check says of a Read that answered an empty token.
const emptyToken = "answered a credential with an empty access token and no error; the host counts that as a fault of the plugin, not as an empty store: answer not-found (sdk.ErrNotFound, gRPC NOT_FOUND) instead"

func checkReadEmpty(t T, s Suite) {
	c, err := s.read(s.New(t, s.setup(nil)))
	switch {
	case err == nil && c.AccessToken == "":
		t.Fatalf("Read on an empty store %s", emptyToken)
	case err == nil:
		t.Fatalf("Read on an empty store returned a credential (%s); want not-found", c.Fingerprint())
	case !errors.Is(err, sdk.ErrNotFound):
		t.Fatalf("Read on an empty store: got %v; want not-found (sdk.ErrNotFound, gRPC NOT_FOUND)", err)
	}
}

func checkReadSeeded(t T, s Suite) {
	seed := sampleCredential("seeded")
	got, err := s.read(s.New(t, s.setup(&seed)))
	switch {
	case err != nil:
		t.Fatalf("Read on a filled store: %v", err)
	case got.AccessToken == "":
		t.Fatalf("Read on a filled store %s", emptyToken)
	case got.AccessToken != seed.AccessToken:
		t.Errorf("Read: access token fingerprint %s; want %s", got.Fingerprint(), seed.Fingerprint())
	}
}

func checkSaveRead(t T, s Suite) {
	p := s.New(t, s.setup(nil))
	if !s.info(t, p).CanSave {
		t.Skipf("Info says the plugin cannot save")
	}
	first := sampleCredential("first")
	if err := s.save(p, first); err != nil {
		t.Fatalf("Save: %v", err)
	}
	assertEqual(t, "after first Save", s.mustRead(t, p), first)

	// A store may keep metadata keys a Save does not mention (the file
	// store keeps every key it does not own), so the second Save changes
	// the values of the same keys rather than dropping any.
	second := sampleCredential("second")
	second.Scopes = []string{"user:inference"}
	second.Metadata["subscriptionType"] = "max"
	if err := s.save(p, second); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	assertEqual(t, "after second Save", s.mustRead(t, p), second)
}

func checkUnsupported(t T, s Suite) {
	p := s.New(t, s.setup(nil))
	info := s.info(t, p)
	if info.CanSave && info.CanRefresh {
		t.Skipf("Info says the plugin can save and refresh")
	}
	if !info.CanSave {
		err := s.save(p, sampleCredential("unsupported"))
		if !errors.Is(err, sdk.ErrUnsupported) {
			t.Fatalf("Save on a plugin whose Info says it cannot save: got %v; want unsupported (sdk.ErrUnsupported, gRPC UNIMPLEMENTED)", err)
		}
		if _, err := s.read(p); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("Read after an unsupported Save: got %v; want not-found (nothing stored)", err)
		}
	}
	if !info.CanRefresh {
		_, err := call(s, "Refresh", func(ctx context.Context) (sdk.Credential, error) { return p.Refresh(ctx, sampleCredential("stale")) })
		if !errors.Is(err, sdk.ErrUnsupported) {
			t.Fatalf("Refresh on a plugin whose Info says it cannot refresh: got %v; want unsupported (sdk.ErrUnsupported, gRPC UNIMPLEMENTED)", err)
		}
	}
}

func checkConcurrentReads(t T, s Suite) {
	seed := sampleCredential("concurrent")
	st := s.setup(&seed)
	st.seedIfCan = true
	p := s.New(t, st)
	// What one Read says is what every concurrent one must say: the seed,
	// or not-found where the store could not be filled.
	want, err := s.read(p)
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		want = sdk.Credential{}
	case err != nil:
		t.Fatalf("Read: %v", err)
	case want.AccessToken == "":
		t.Fatalf("Read %s", emptyToken)
	}
	const goroutines, reads = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*reads)
	toks := make(chan string, goroutines*reads)
	for range goroutines {
		wg.Go(func() {
			for range reads {
				c, err := s.read(p)
				switch {
				case err != nil && !(want.AccessToken == "" && errors.Is(err, sdk.ErrNotFound)):
					errs <- err
				case err == nil:
					toks <- c.AccessToken
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	close(toks)
	for err := range errs {
		t.Errorf("concurrent Read: %v", err)
	}
	for tok := range toks {
		if tok != want.AccessToken {
			t.Errorf("concurrent Read returned fingerprint %s; want %s", sdk.Fingerprint(tok), sdk.Fingerprint(want.AccessToken))
		}
	}
}

func checkDeadline(t T, s Suite) {
	p := s.New(t, s.setup(nil))
	// Deadlines short enough to pass before, during or after the call.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i+1)*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := p.Read(ctx)
			if took := time.Since(start); took > orDefault(s.CallTimeout) {
				errs <- fmt.Errorf("a Read with a %s deadline took %s", time.Duration(i+1)*time.Millisecond, took.Round(time.Millisecond))
				return
			}
			// gRPC says CANCELLED rather than DEADLINE_EXCEEDED when the
			// plugin's side, seeing the deadline pass, reset the stream first.
			if err != nil && !errors.Is(err, sdk.ErrNotFound) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("a Read whose %s deadline passed: got %v; want its answer or the deadline error (gRPC DEADLINE_EXCEEDED)", time.Duration(i+1)*time.Millisecond, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("%v", err)
	}
	if _, err := s.read(p); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("the Read after the ones given up: got %v; want not-found again: calls abandoned at their deadline must not stop the plugin answering", err)
	}
}

// checkLocks checks the locks Info declares: a kind a host can take, an
// absolute path (a name for a provider lock), a known scope, and no stale
// time below proper-lockfile's 2 s floor for a directory lock.
func checkLocks(t T, info sdk.Info) {
	t.Helper()
	for _, l := range info.Locks {
		switch l.Kind {
		case sdk.LockFlock, sdk.LockDir:
			if !filepath.IsAbs(l.Path) {
				t.Errorf("Info declares a %s whose path is not absolute", l)
			}
		case sdk.LockProvider:
			if l.Path == "" {
				t.Errorf("Info declares a provider lock with no name (Path)")
			}
		default:
			t.Errorf("Info declares a lock of unknown kind %q: no host refreshes a store declaring it", l.Kind)
		}
		if l.Scope != "" && l.Scope != sdk.LockScopeRefresh && l.Scope != sdk.LockScopeSave {
			t.Errorf("Info declares a %s of unknown scope %q", l, l.Scope)
		}
		if l.Kind == sdk.LockDir && l.Stale != 0 && l.Stale < 2*time.Second {
			t.Errorf("Info declares a %s with stale %s: proper-lockfile takes at least 2s", l, l.Stale)
		}
	}
}

// checkProviderLocks takes and releases, through p, each lock p holds
// itself (LockProvider): the host cannot refresh a store whose lock it
// cannot have. A provider declaring one must implement sdk.Locker and
// hold it until released; ErrUnsupported means it does not.
func checkProviderLocks(t T, p sdk.Provider, info sdk.Info) {
	t.Helper()
	for _, l := range info.Locks {
		if l.Kind != sdk.LockProvider {
			continue
		}
		locker, ok := p.(sdk.Locker)
		if !ok {
			t.Errorf("Info declares a %s, but the provider does not implement sdk.Locker", l)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		hold, err := locker.Lock(ctx, sdk.LockRequest{Lock: l})
		if err != nil {
			cancel()
			t.Errorf("Info declares a %s, but taking it failed: %v", l, err)
			continue
		}
		select {
		case <-hold.Lost():
			t.Errorf("the %s was lost as soon as it was held: %v", l, hold.Err())
		default:
		}
		if err := hold.Release(ctx); err != nil {
			t.Errorf("release the %s: %v", l, err)
		}
		// Released, it can be had again at once.
		again, err := locker.Lock(ctx, sdk.LockRequest{Lock: l})
		if err != nil {
			t.Errorf("the %s could not be taken again after its release: %v", l, err)
		} else if err := again.Release(ctx); err != nil {
			t.Errorf("release the %s: %v", l, err)
		}
		cancel()
	}
}

// SampleCredential returns a credential with every field set, tagged by
// tag; the expiry is whole milliseconds, the finest precision a store must
// keep.
func SampleCredential(tag string) sdk.Credential { return sampleCredential(tag) }

func sampleCredential(tag string) sdk.Credential {
	return sdk.Credential{
		AccessToken:  "sdktest-access-" + tag,
		RefreshToken: "sdktest-refresh-" + tag,
		ExpiresAt:    time.UnixMilli(time.Now().Add(time.Hour).UnixMilli()),
		Scopes:       []string{"user:inference", "user:profile"},
		Metadata:     map[string]string{"subscriptionType": "pro", "sdktest": tag},
	}
}

// assertEqual compares every field; failures show fingerprints, never tokens.
func assertEqual(t T, when string, got, want sdk.Credential) {
	t.Helper()
	if got.AccessToken != want.AccessToken {
		t.Errorf("%s: access token %s; want %s", when, got.Fingerprint(), want.Fingerprint())
	}
	if got.RefreshToken != want.RefreshToken {
		t.Errorf("%s: refresh token %s; want %s", when, sdk.Fingerprint(got.RefreshToken), sdk.Fingerprint(want.RefreshToken))
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("%s: expiry %v; want %v", when, got.ExpiresAt, want.ExpiresAt)
	}
	if !slices.Equal(got.Scopes, want.Scopes) {
		t.Errorf("%s: scopes %q; want %q", when, got.Scopes, want.Scopes)
	}
	if !maps.Equal(got.Metadata, want.Metadata) {
		t.Errorf("%s: metadata %q; want %q", when, got.Metadata, want.Metadata)
	}
}
