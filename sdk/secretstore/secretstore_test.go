package secretstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
	"github.com/credhost/credhost/sdk/secretstore"
)

// memBackend is an in-memory item (a fake backend: the real ones are the
// keychain's Secret Service and Credential Manager, tested in their plugins).
type memBackend struct {
	secret *string
	getErr error
}

func (m *memBackend) Get() (string, error) {
	if m.getErr != nil {
		return "", m.getErr
	}
	if m.secret == nil {
		return "", secretstore.ErrNoItem
	}
	return *m.secret, nil
}

func (m *memBackend) Set(s string) error { m.secret = &s; return nil }

func newItem(t *testing.T, b secretstore.Backend, o secretstore.Options, limit int) *secretstore.Item {
	t.Helper()
	it, err := secretstore.NewItem(secretstore.Spec{Provider: "p", Describe: "test item", Backend: b, Limit: limit, LimitWhy: "the test store takes little", Hint: "do the thing"}, o, sdk.OAuthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// itemProvider adapts an Item to sdk.Provider for the conformance suite.
type itemProvider struct{ *secretstore.Item }

func (p itemProvider) Info(context.Context) (sdk.Info, error)                { return p.Item.Info("test"), nil }
func (p itemProvider) Configure(context.Context, sdk.ConfigureRequest) error { return nil }

// TestConformance: a json item keeps every field (a raw one keeps only the
// token, see TestRawAndLimit).
func TestConformance(t *testing.T) {
	sdktest.Run(t, func(t *testing.T, seed *sdk.Credential) sdk.Provider {
		p := itemProvider{newItem(t, &memBackend{}, secretstore.Options{}, 0)}
		if seed != nil {
			if err := p.Save(context.Background(), *seed); err != nil {
				t.Fatal(err)
			}
		}
		return p
	})
}

func TestUnavailableIsNotFoundWithHint(t *testing.T) {
	t.Parallel()
	b := &memBackend{getErr: fmt.Errorf("%w: no session bus", secretstore.ErrUnavailable)}
	_, err := newItem(t, b, secretstore.Options{}, 0).Read(context.Background())
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "no session bus; do the thing") {
		t.Errorf("got %v; want not-found with the reason and the hint", err)
	}
	b.getErr = errors.New("disk on fire")
	if _, err := newItem(t, b, secretstore.Options{}, 0).Read(context.Background()); errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "test item: disk on fire") {
		t.Errorf("got %v; want a fault naming the item", err)
	}
}

func TestRawAndLimit(t *testing.T) {
	t.Parallel()
	b := &memBackend{}
	it := newItem(t, b, secretstore.Options{Format: "raw"}, 10)
	if err := it.Save(context.Background(), sdk.Credential{AccessToken: "0123456789", RefreshToken: "dropped"}); err != nil || *b.secret != "0123456789" {
		t.Fatalf("raw save: %v", err)
	}
	if err := it.Save(context.Background(), sdk.Credential{AccessToken: "0123456789a"}); err == nil || !strings.Contains(err.Error(), "11 bytes; the test store takes little (nothing was written)") || *b.secret != "0123456789" {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := it.Refresh(context.Background(), sdk.Credential{}); !errors.Is(err, sdk.ErrUnsupported) {
		t.Errorf("raw refresh: %v; want ErrUnsupported", err)
	}
}
