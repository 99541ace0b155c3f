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
// declares only locks a host can take; Configure refuses a config with an
// unknown key; Read on an empty store is sdk.ErrNotFound; a seeded store
// reads back its token; Save then Read round-trips every field and the
// metadata (for providers that can save); operations a provider cannot do
// return sdk.ErrUnsupported; concurrent Reads are safe and agree; a call
// given up at its deadline leaves the provider answering; and Refresh either
// works against a rotating token endpoint (see RunRefresh) or is
// sdk.ErrUnsupported. Run it under -race.
//
// The checks themselves live in sdk/conformance, which `credhost plugin
// check` runs against a plugin executable in any language: a Go plugin
// passing Run passes that too, check for check.
//
// Fake is a function-field fake provider for tests of code that calls
// providers.
package sdktest

import (
	"context"
	"testing"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/conformance"
)

// Factory returns a provider whose store holds s.Seed, or nothing when
// s.Seed is nil, configured with s.OAuth as its shared oauth block (use
// s.Configure). Each call must get a store of its own (use t.TempDir()).
// A store that cannot hold every field (an environment variable holds only a
// token) keeps what it can; Run compares only the access token of a seed.
type Factory func(t *testing.T, s Setup) sdk.Provider

// Setup is what a Factory builds one provider from: the seed of its
// store, the shared oauth block, and Configure, which configures the
// provider with both (and, for the check that a config with an unknown key
// is refused, adds one).
type Setup = conformance.Setup

// Run runs the conformance suite as subtests of t, one per check of
// conformance.Checks (the very checks `credhost plugin check` runs against
// a plugin executable), and the refresh tests (RunRefresh) as "refresh".
func Run(t *testing.T, newProvider Factory) {
	t.Helper()
	suite := conformance.Suite{New: adapt(newProvider)}
	for _, c := range conformance.Checks() {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, suite) })
	}
	t.Run("refresh", func(t *testing.T) { RunRefresh(t, newProvider) })
}

// adapt makes a Factory of the conformance package's kind: the checks run
// as subtests, so the T they hand it is a *testing.T.
func adapt(f Factory) conformance.Factory {
	return func(t conformance.T, s Setup) sdk.Provider { return f(t.(*testing.T), s) }
}

// sampleCredential returns a credential with every field set.
func sampleCredential(tag string) sdk.Credential { return conformance.SampleCredential(tag) }

func mustInfo(t *testing.T, p sdk.Provider) sdk.Info {
	t.Helper()
	info, err := p.Info(context.Background())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return info
}
