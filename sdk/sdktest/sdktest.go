// Package sdktest is the conformance suite every credhost provider runs, the
// same way for a provider called in-process and for one behind a real plugin
// process:
//
//	func TestConformance(t *testing.T) {
//		sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
//			// The store holds s.Seed (empty when nil); s.Configure passes
//			// the config block and s.OAuth, the shared oauth block.
//			return s.Configure(t, newProvider(t, s.Seed), "mine", `{"path":"…"}`)
//		})
//	}
//
// It checks the contract the host relies on: Info names the plugin and
// declares only locks a host can take; Read on an empty store is
// sdk.ErrNotFound; a seeded store reads back its token; Save then Read
// round-trips every field and the metadata (for providers that can save);
// operations a provider cannot do return sdk.ErrUnsupported; concurrent Reads
// are safe and agree; and Refresh either works against a rotating token
// endpoint (see RunRefresh) or is sdk.ErrUnsupported. Run it under -race.
//
// Fake is a function-field fake provider for tests of code that calls
// providers.
package sdktest

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// Factory returns a provider whose store holds s.Seed, or nothing when
// s.Seed is nil, configured with s.OAuth as its shared oauth block (use
// s.Configure). Each call must get a store of its own (use t.TempDir()).
// A store that cannot hold every field (an environment variable holds only a
// token) keeps what it can; Run compares only the access token of a seed.
type Factory func(t *testing.T, s Setup) sdk.Provider

// Setup is what a Factory builds one provider from.
type Setup struct {
	// Seed is the credential the store holds; nil means an empty store.
	Seed *sdk.Credential
	// OAuth is the shared oauth block (sdk.ConfigureRequest.OAuth): the
	// refresh tests point it at a rotating test token endpoint; the other
	// tests leave it zero (no token endpoint).
	OAuth sdk.OAuthConfig
}

// Configure configures p with the config block configJSON and s.OAuth,
// and fails the test on error.
func (s Setup) Configure(t testing.TB, p sdk.Provider, name, configJSON string) sdk.Provider {
	t.Helper()
	req := sdk.ConfigureRequest{Name: name, Config: []byte(configJSON), OAuth: s.OAuth}
	if err := p.Configure(context.Background(), req); err != nil {
		t.Fatalf("Configure %s: %v", name, err)
	}
	return p
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, newProvider Factory) {
	t.Helper()
	ctx := context.Background()

	t.Run("Info", func(t *testing.T) {
		p := newProvider(t, Setup{})
		info, err := p.Info(ctx)
		if err != nil {
			t.Fatalf("Info: %v", err)
		}
		if info.Name == "" {
			t.Errorf("Info().Name is empty; want the plugin's name")
		}
		checkLocks(t, info)
		checkProviderLocks(t, p, info)
	})

	t.Run("ReadEmptyIsNotFound", func(t *testing.T) {
		_, err := newProvider(t, Setup{}).Read(ctx)
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("Read on an empty store: got %v; want an error wrapping sdk.ErrNotFound", err)
		}
	})

	t.Run("ReadSeeded", func(t *testing.T) {
		seed := sampleCredential("seeded")
		got, err := newProvider(t, Setup{Seed: &seed}).Read(ctx)
		if err != nil {
			t.Fatalf("Read on a seeded store: %v", err)
		}
		if got.AccessToken != seed.AccessToken {
			t.Errorf("Read: access token fingerprint %s; want %s", got.Fingerprint(), seed.Fingerprint())
		}
	})

	t.Run("SaveReadRoundTrip", func(t *testing.T) {
		p := newProvider(t, Setup{})
		info := mustInfo(t, p)
		first := sampleCredential("first")
		err := p.Save(ctx, first)
		if !info.CanSave {
			if !errors.Is(err, sdk.ErrUnsupported) {
				t.Fatalf("Save on a provider without CanSave: got %v; want sdk.ErrUnsupported", err)
			}
			if _, err := p.Read(ctx); !errors.Is(err, sdk.ErrNotFound) {
				t.Fatalf("Read after an unsupported Save: got %v; want sdk.ErrNotFound (nothing stored)", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
		assertEqual(t, "after first Save", mustRead(t, p), first)

		// A store may keep metadata keys a Save does not mention (the file
		// store keeps every key it does not own), so the second Save changes
		// the values of the same keys rather than dropping any.
		second := sampleCredential("second")
		second.Scopes = []string{"user:inference"}
		second.Metadata["subscriptionType"] = "max"
		if err := p.Save(ctx, second); err != nil {
			t.Fatalf("second Save: %v", err)
		}
		assertEqual(t, "after second Save", mustRead(t, p), second)
	})

	t.Run("RefreshUnsupported", func(t *testing.T) {
		p := newProvider(t, Setup{})
		if mustInfo(t, p).CanRefresh {
			t.Skip("provider can refresh without a token endpoint; the Refresh tests cover it")
		}
		_, err := p.Refresh(ctx, sampleCredential("stale"))
		if !errors.Is(err, sdk.ErrUnsupported) {
			t.Fatalf("Refresh on a provider without CanRefresh: got %v; want sdk.ErrUnsupported", err)
		}
	})

	t.Run("Refresh", func(t *testing.T) { RunRefresh(t, newProvider) })

	t.Run("ConcurrentReads", func(t *testing.T) {
		seed := sampleCredential("concurrent")
		p := newProvider(t, Setup{Seed: &seed})
		const goroutines, reads = 16, 8
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*reads)
		toks := make(chan string, goroutines*reads)
		for range goroutines {
			wg.Go(func() {
				for range reads {
					c, err := p.Read(ctx)
					if err != nil {
						errs <- err
						continue
					}
					toks <- c.AccessToken
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
			if tok != seed.AccessToken {
				t.Errorf("concurrent Read returned fingerprint %s; want %s", sdk.Fingerprint(tok), seed.Fingerprint())
			}
		}
	})
}

// checkLocks checks the locks Info declares: a kind a host can take, an
// absolute path (a name for a provider lock), a known scope, and no stale time below proper-lockfile's
// 2 s floor for a directory lock.
func checkLocks(t *testing.T, info sdk.Info) {
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
func checkProviderLocks(t *testing.T, p sdk.Provider, info sdk.Info) {
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

// sampleCredential returns a credential with every field set; the expiry is
// whole milliseconds, the finest precision a store must keep.
func sampleCredential(tag string) sdk.Credential {
	return sdk.Credential{
		AccessToken:  "sdktest-access-" + tag,
		RefreshToken: "sdktest-refresh-" + tag,
		ExpiresAt:    time.UnixMilli(time.Now().Add(time.Hour).UnixMilli()),
		Scopes:       []string{"user:inference", "user:profile"},
		Metadata:     map[string]string{"subscriptionType": "pro", "sdktest": tag},
	}
}

func mustInfo(t *testing.T, p sdk.Provider) sdk.Info {
	t.Helper()
	info, err := p.Info(context.Background())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return info
}

func mustRead(t *testing.T, p sdk.Provider) sdk.Credential {
	t.Helper()
	c, err := p.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return c
}

// assertEqual compares every field; failures show fingerprints, never tokens.
func assertEqual(t *testing.T, when string, got, want sdk.Credential) {
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
