package keychain

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// These tests run against a real Secret Service: .ci/test starts
// gnome-keyring in a private D-Bus session and sets
// CREDHOST_REQUIRE_SECRET_SERVICE=1, so there they fail rather than skip.
// The format is checked against a client we did not write (secret-tool).

func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(func() sdk.Provider { return New() })
	os.Exit(m.Run())
}

func requireSecretService(t *testing.T) {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("CREDHOST_REQUIRE_SECRET_SERVICE") == "1" {
		skip = t.Fatalf
	}
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		skip("no D-Bus session bus; run the tests through .ci/test for a private Secret Service")
	}
	if _, err := exec.LookPath("secret-tool"); err != nil {
		skip("secret-tool (libsecret-tools) is not installed")
	}
	if _, err := systemStore(os.LookupEnv).Get("credhost-probe", "probe"); err != nil && err != ErrNoItem {
		skip("no usable Secret Service: %v", err)
	}
}

func uniqueService(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "credhost-test-" + hex.EncodeToString(b)
}

func realConfig(service string) string {
	return `{"service":"` + service + `","account":"tester","timeout":"5s"}`
}

func TestConformanceSecretService(t *testing.T) {
	requireSecretService(t)
	factory := func(newProvider func(t *testing.T) sdk.Provider) sdktest.Factory {
		return func(t *testing.T, s sdktest.Setup) sdk.Provider {
			p := newProvider(t)
			s.Configure(t, p, "keychain", realConfig(uniqueService(t)))
			seedStore(t, p, s.Seed)
			return p
		}
	}
	t.Run("in-process", func(t *testing.T) {
		sdktest.Run(t, factory(func(*testing.T) sdk.Provider { return New() }))
	})
	t.Run("plugin process", func(t *testing.T) {
		sdktest.Run(t, factory(func(t *testing.T) sdk.Provider { return sdktest.Process(t) }))
	})
}

// TestRefreshConformance runs the refresh tests against the system
// keyring's provider, in-process and across the plugin boundary. Refresh
// never touches the keyring, so they run without a Secret Service too.
func TestRefreshConformance(t *testing.T) {
	factory := func(newProvider func(t *testing.T) sdk.Provider) sdktest.Factory {
		return func(t *testing.T, s sdktest.Setup) sdk.Provider {
			return s.Configure(t, newProvider(t), "keychain", realConfig(uniqueService(t)))
		}
	}
	t.Run("in-process", func(t *testing.T) {
		sdktest.RunRefresh(t, factory(func(*testing.T) sdk.Provider { return New() }))
	})
	t.Run("plugin process", func(t *testing.T) {
		sdktest.RunRefresh(t, factory(func(t *testing.T) sdk.Provider { return sdktest.Process(t) }))
	})
}

func TestSecretToolReadsWhatCredhostWrites(t *testing.T) {
	requireSecretService(t)
	service := uniqueService(t)
	p := New()
	sdktest.Configure(t, p, "keychain", realConfig(service))
	cred := sdk.Credential{AccessToken: "sk-ant-oat01-interop", RefreshToken: "sk-ant-ort01-interop", ExpiresAt: time.UnixMilli(1904281689000)}
	if err := p.Save(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("secret-tool", "lookup", "service", service, "username", "tester").Output()
	if err != nil {
		t.Fatalf("secret-tool lookup: %v", err)
	}
	for _, want := range []string{`"accessToken":"sk-ant-oat01-interop"`, `"refreshToken":"sk-ant-ort01-interop"`, `"expiresAt":1904281689000`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("secret-tool sees %d bytes without %s", len(out), want)
		}
	}
}

func TestCredhostReadsWhatSecretToolWrites(t *testing.T) {
	requireSecretService(t)
	service := uniqueService(t)
	store := exec.Command("secret-tool", "store", "--label=Claude Code", "service", service, "username", "tester")
	store.Stdin = strings.NewReader(`{"claudeAiOauth":{"accessToken":"sk-ant-oat01-from-secret-tool","expiresAt":1904281689000,"scopes":["user:inference"]},"other":1}`)
	if out, err := store.CombinedOutput(); err != nil {
		t.Fatalf("secret-tool store: %v\n%s", err, out)
	}
	p := New()
	sdktest.Configure(t, p, "keychain", realConfig(service))
	cred, err := p.Read(context.Background())
	if err != nil || cred.AccessToken != "sk-ant-oat01-from-secret-tool" || cred.ExpiresAt.UnixMilli() != 1904281689000 {
		t.Fatalf("Read: %v, %v", cred, err)
	}
	// A save keeps what credhost does not own, as secret-tool then sees.
	cred.AccessToken = "sk-ant-oat01-saved-back"
	if err := p.Save(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("secret-tool", "lookup", "service", service, "username", "tester").Output()
	if !strings.Contains(string(out), `"other":1`) || !strings.Contains(string(out), "saved-back") {
		t.Errorf("after Save secret-tool sees %s", out)
	}
}

func TestRawFormatSecretService(t *testing.T) {
	requireSecretService(t)
	service := uniqueService(t)
	store := exec.Command("secret-tool", "store", "--label=raw", "service", service, "username", "tester")
	store.Stdin = strings.NewReader("raw-token-value")
	if out, err := store.CombinedOutput(); err != nil {
		t.Fatalf("secret-tool store: %v\n%s", err, out)
	}
	p := New()
	sdktest.Configure(t, p, "keychain", `{"service":"`+service+`","account":"tester","format":"raw"}`)
	cred, err := p.Read(context.Background())
	if err != nil || cred.AccessToken != "raw-token-value" || !cred.ExpiresAt.IsZero() {
		t.Fatalf("Read raw: %v, %v", cred, err)
	}
}
