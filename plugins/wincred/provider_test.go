package wincred

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
	"github.com/credhost/credhost/sdk/secretstore"
)

func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(func() sdk.Provider { return New() })
	os.Exit(m.Run())
}

// fakeCredential is an in-memory stand-in for Credential Manager (a fake:
// the real one exists only on Windows, where TestConformanceSystem runs).
type fakeCredential struct {
	mu     sync.Mutex
	secret *string
	writes int
}

func (f *fakeCredential) Get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secret == nil {
		return "", secretstore.ErrNoItem
	}
	return *f.secret, nil
}

func (f *fakeCredential) Set(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secret = &s
	f.writes++
	return nil
}

func withFake(f *fakeCredential) Option {
	return WithBackend(func(string) secretstore.Backend { return f })
}

func TestConformanceFakeBackend(t *testing.T) {
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		p := New(withFake(&fakeCredential{}))
		s.Configure(t, p, "wincred", `{"target":"credhost-test"}`)
		seedStore(t, p, s.Seed)
		return p
	})
}

// TestConformanceSystem runs against the real Credential Manager, in-process
// and across the plugin boundary; only Windows has one.
func TestConformanceSystem(t *testing.T) {
	if runtime.GOOS != "windows" {
		t.Skip("Windows Credential Manager exists only on Windows")
	}
	for _, mode := range []string{"in-process", "plugin process"} {
		t.Run(mode, func(t *testing.T) {
			n := 0
			sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
				n++
				var p sdk.Provider = New()
				if mode == "plugin process" {
					p = sdktest.Process(t)
				}
				s.Configure(t, p, "wincred", `{"target":"credhost-test-`+strings.ReplaceAll(t.Name(), "/", "-")+`"}`)
				seedStore(t, p, s.Seed)
				return p
			})
		})
	}
}

// TestRefreshConformance runs the refresh tests against the system
// provider, in-process and across the plugin boundary. Refresh never
// touches Credential Manager, so they run on every system.
func TestRefreshConformance(t *testing.T) {
	for _, mode := range []string{"in-process", "plugin process"} {
		t.Run(mode, func(t *testing.T) {
			sdktest.RunRefresh(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
				var p sdk.Provider = New()
				if mode == "plugin process" {
					p = sdktest.Process(t)
				}
				return s.Configure(t, p, "wincred", `{"target":"credhost-test-refresh"}`)
			})
		})
	}
}

// seedStore saves seed to p, when there is one.
func seedStore(t *testing.T, p sdk.Provider, seed *sdk.Credential) {
	t.Helper()
	if seed != nil {
		if err := p.Save(context.Background(), *seed); err != nil {
			t.Fatalf("seed the store: %v", err)
		}
	}
}

func TestNotAvailableElsewhere(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("this is the behaviour on other systems")
	}
	p := New()
	sdktest.Configure(t, p, "wincred", `{}`)
	_, err := p.Read(context.Background())
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "not available on "+runtime.GOOS) {
		t.Errorf("Read: %v; want not-found saying it is not available on %s", err, runtime.GOOS)
	}
	if err := p.Save(context.Background(), sdk.Credential{AccessToken: "a"}); err == nil {
		t.Errorf("Save succeeded where there is no Credential Manager")
	}
}

func TestBlobLimitCheckedBeforeWriting(t *testing.T) {
	t.Parallel()
	f := &fakeCredential{}
	p := New(withFake(f))
	sdktest.Configure(t, p, "wincred", `{"format":"raw"}`)
	if err := p.Save(context.Background(), sdk.Credential{AccessToken: strings.Repeat("x", 2560)}); err != nil {
		t.Fatalf("2560 bytes: %v", err)
	}
	err := p.Save(context.Background(), sdk.Credential{AccessToken: strings.Repeat("x", 2561)})
	if err == nil || !strings.Contains(err.Error(), "the secret is 2561 bytes; Windows Credential Manager takes at most 2560 bytes (nothing was written)") || f.writes != 1 {
		t.Errorf("2561 bytes: %v after %d writes; want a clear error and no second write", err, f.writes)
	}
}

func TestConfigure(t *testing.T) {
	t.Parallel()
	for config, want := range map[string]string{
		`{"tagret":"x"}`:   `unknown key "tagret"`,
		`{"format":"xml"}`: `key "format": "xml"`,
	} {
		err := New(withFake(&fakeCredential{})).Configure(context.Background(), sdk.ConfigureRequest{Name: "w", Config: []byte(config)})
		if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", config, err, want)
		}
	}
}
