package conformance_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/conformance"
	"github.com/credhost/credhost/sdk/sdktest"
)

// memStore is a real, if small, store: a credential in memory that Save
// replaces, and a strict config.
type memStore struct {
	sdktest.Fake
	mu   sync.Mutex
	cred *sdk.Credential
}

func newMemStore(seed *sdk.Credential) *memStore {
	m := &memStore{cred: seed}
	m.InfoF = func(context.Context) (sdk.Info, error) { return sdk.Info{Name: "mem", CanSave: true}, nil }
	m.ConfigureF = func(_ context.Context, req sdk.ConfigureRequest) error {
		var c struct{}
		return req.DecodeConfig(&c)
	}
	m.ReadF = func(context.Context) (sdk.Credential, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.cred == nil {
			return sdk.Credential{}, sdk.NotFound("empty")
		}
		return *m.cred, nil
	}
	m.SaveF = func(_ context.Context, c sdk.Credential) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.cred = &c
		return nil
	}
	return m
}

// TestRunChecksOutsideTesting runs the checks with the package's own T, as
// `credhost plugin check` does: a conforming store passes every check, and
// each broken variant fails the check that says what it gets wrong, on one
// line, while the others still run (and may fail too).
func TestRunChecksOutsideTesting(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		breakIt   func(m *memStore)
		failCheck string
		want      string
	}{
		"conforming": {breakIt: func(*memStore) {}},
		"empty token on an empty store": {
			breakIt: func(m *memStore) {
				m.ReadF = func(context.Context) (sdk.Credential, error) { return sdk.Credential{}, nil }
			},
			failCheck: "read-empty", want: "empty access token",
		},
		"config not strict": {
			breakIt:   func(m *memStore) { m.ConfigureF = nil },
			failCheck: "configure-strict", want: "accepted a config with the unknown key",
		},
		"save drops metadata": {
			breakIt: func(m *memStore) {
				save := m.SaveF
				m.SaveF = func(ctx context.Context, c sdk.Credential) error { c.Metadata = nil; return save(ctx, c) }
			},
			failCheck: "save-read", want: "metadata",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			factory := func(ct conformance.T, s conformance.Setup) sdk.Provider {
				m := newMemStore(s.Seed)
				tc.breakIt(m)
				return s.Configure(ct, m, "mem", `{}`)
			}
			results := conformance.RunChecks(conformance.Suite{New: factory}, conformance.Checks())
			if len(results) != len(conformance.Checks()) {
				t.Fatalf("%d results for %d checks", len(results), len(conformance.Checks()))
			}
			for _, r := range results {
				if strings.Contains(r.String(), "\n") {
					t.Errorf("result %s spans lines: %q", r.Name, r)
				}
				switch {
				case r.Name == tc.failCheck:
					if r.Outcome != conformance.Fail || !strings.Contains(r.Detail, tc.want) {
						t.Errorf("%s: %s; want FAIL saying %q", r.Name, r, tc.want)
					}
				case r.Outcome == conformance.Fail && tc.failCheck == "":
					t.Errorf("%s: %s; want no failure", r.Name, r)
				}
			}
		})
	}
}
