package pythonplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
	"github.com/credhost/credhost/sdk/plugin"
	"github.com/credhost/credhost/sdk/sdktest"
)

// pluginDir is an installed copy of the example (see Install), made once
// by TestMain; empty when the tests skip.
var pluginDir string

// skipReason says why the Python tests skip on this machine.
var skipReason string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "credhost-python-plugin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := Install(".", dir); err != nil {
			if errors.Is(err, ErrNoPython) && os.Getenv(RequireEnv) != "1" {
				skipReason = err.Error()
			} else {
				fmt.Fprintf(os.Stderr, "install the Python plugin: %v\n", err)
				return 1
			}
		} else {
			pluginDir = dir
		}
		return m.Run()
	}()
	os.Exit(code)
}

// store returns the installed plugin's command, skipping the test when the
// machine's Python lacks the Debian packages.
func store(t testing.TB) string {
	t.Helper()
	if pluginDir == "" {
		t.Skip(skipReason)
	}
	return filepath.Join(pluginDir, "json_store.py")
}

// seedFile writes the store file holding c, or nothing for nil, and returns
// its path.
func seedFile(t testing.TB, c *sdk.Credential) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credential.json")
	if c == nil {
		return path
	}
	doc := map[string]any{"access_token": c.AccessToken, "refresh_token": c.RefreshToken, "scopes": c.Scopes, "metadata": c.Metadata}
	if !c.ExpiresAt.IsZero() {
		doc["expires_at"] = c.ExpiresAt.UnixMilli()
	}
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pathConfig(path string) string {
	b, _ := json.Marshal(map[string]string{"path": path})
	return string(b)
}

// The conformance suite against the Python plugin, across the same
// go-plugin boundary (mutual TLS, health, controller) the host uses.
func TestConformance(t *testing.T) {
	t.Parallel()
	cmd := store(t)
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		return s.Configure(t, sdktest.Dial(t, exec.Command(cmd)), "jsonstore", pathConfig(seedFile(t, s.Seed)))
	})
}

// TestModuleCookieIsTheHosts keeps the Python module's handshake constants
// equal to the host's: a plugin built from the module must start.
func TestModuleCookieIsTheHosts(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("credhost_plugin.py")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"MAGIC_COOKIE_KEY":   plugin.Handshake.MagicCookieKey,
		"MAGIC_COOKIE_VALUE": plugin.Handshake.MagicCookieValue,
	} {
		m := regexp.MustCompile(`(?m)^` + name + ` = "([^"]*)"$`).FindSubmatch(src)
		if m == nil {
			t.Errorf("credhost_plugin.py does not set %s", name)
		} else if string(m[1]) != want {
			t.Errorf("credhost_plugin.py: %s = %q; the host's is %q", name, m[1], want)
		}
	}
	m := regexp.MustCompile(`(?m)^PROTOCOL_VERSIONS = \(([0-9, ]*)\)$`).FindSubmatch(src)
	if m == nil || string(m[1]) != fmt.Sprintf("%d,", plugin.Handshake.ProtocolVersion) {
		t.Errorf("credhost_plugin.py: PROTOCOL_VERSIONS = (%s); the host speaks %d", m[1:], plugin.Handshake.ProtocolVersion)
	}
}

// TestErrorsCrossTheWire checks the module's error mapping from the host's
// side: each kind comes back as the sentinel the host decides by, with the
// message alone, and a token endpoint's Retry-After as the delay the host
// waits (a google.rpc.RetryInfo detail).
func TestErrorsCrossTheWire(t *testing.T) {
	t.Parallel()
	cmd := store(t)
	ctx := context.Background()

	// Configure: an unknown key and a missing one are invalid config.
	for cfg, want := range map[string]string{
		`{"path":"/tmp/x","colour":"red"}`: "unknown key 'colour' (known: path)",
		`{}`:                               "key 'path' is required",
		`{"path":7}`:                       "key 'path': want a string, got an integer",
	} {
		p := sdktest.Dial(t, exec.Command(cmd))
		err := p.Configure(ctx, sdk.ConfigureRequest{Name: "jsonstore", Config: []byte(cfg)})
		if !errors.Is(err, sdk.ErrInvalidConfig) || err.Error() != want {
			t.Errorf("Configure(%s): got %v; want sdk.ErrInvalidConfig with message %q", cfg, err, want)
		}
	}

	// Read: a missing file is not-found, a broken one a fault naming the
	// path but not the content.
	path := seedFile(t, nil)
	p := sdktest.Configure(t, sdktest.Dial(t, exec.Command(cmd)), "jsonstore", pathConfig(path))
	if _, err := p.Read(ctx); !errors.Is(err, sdk.ErrNotFound) || err.Error() != "no file at "+path {
		t.Errorf("Read of a missing file: got %v; want sdk.ErrNotFound, %q", err, "no file at "+path)
	}
	if err := os.WriteFile(path, []byte(`{"access_token": "SECRET-broken`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := p.Read(ctx)
	if err == nil || errors.Is(err, sdk.ErrNotFound) || !regexp.MustCompile(regexp.QuoteMeta(path)+` is not valid JSON`).MatchString(err.Error()) {
		t.Errorf("Read of a truncated file: got %v; want a fault naming the path", err)
	}
	if err != nil && regexp.MustCompile("SECRET").MatchString(err.Error()) {
		t.Errorf("the error quotes the file: %v", err)
	}

	// Refresh against an endpoint answering 429: a fault carrying its
	// Retry-After.
	srv := oauthtest.NewServer(t)
	p = sdktest.Dial(t, exec.Command(cmd))
	if err := p.Configure(ctx, sdk.ConfigureRequest{Name: "jsonstore", Config: []byte(pathConfig(path)), OAuth: sdk.OAuthConfig{TokenURL: srv.TokenURL()}}); err != nil {
		t.Fatal(err)
	}
	srv.SetMode(oauthtest.TooManyRequests)
	access, refresh := srv.Issue()
	_, err = p.Refresh(ctx, sdk.Credential{AccessToken: access, RefreshToken: refresh, ExpiresAt: time.Now()})
	if err == nil || errors.Is(err, sdk.ErrInvalidGrant) || sdk.RetryDelay(err) != 120*time.Second {
		t.Errorf("Refresh against a 429 with Retry-After 120: got %v (retry delay %s); want a fault with a 2m0s delay", err, sdk.RetryDelay(err))
	}
}

// TestProviderBugIsAFaultWithItsTraceback: an exception a provider did not
// mean to raise (a bug) is a fault of the provider, not a crash of the
// plugin: the call fails with the exception's type and message, the
// traceback reaches the host's log as an error line (plain-text Python
// tracebacks would be lost below the default level), and the plugin
// serves on.
func TestProviderBugIsAFaultWithItsTraceback(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	cc := plugin.ClientConfig(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}))
	cmd := exec.Command(store(t))
	cmd.Env = append(os.Environ(), "CREDHOST_PY_FAULT=bug-read")
	cc.Cmd = cmd
	cc.StartTimeout = 30 * time.Second
	client := goplugin.NewClient(cc)
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	p, err := plugin.Dispense(rpc)
	if err != nil {
		t.Fatal(err)
	}
	seed := sdk.Credential{AccessToken: "bug-access"}
	sdktest.Configure(t, p, "jsonstore", pathConfig(seedFile(t, &seed)))
	_, err = p.Read(context.Background())
	if err == nil || errors.Is(err, sdk.ErrNotFound) || err.Error() != `KeyError: 'no such key'` {
		t.Errorf("Read with a bug: got %v; want a fault reading \"KeyError: 'no such key'\"", err)
	}
	if _, err := p.Info(context.Background()); err != nil {
		t.Errorf("Info after the bug: %v; want the plugin still serving", err)
	}
	client.Kill()
	if out := logs.String(); !strings.Contains(out, "[ERROR]") || !strings.Contains(out, "Read raised KeyError") || !strings.Contains(out, "Traceback") {
		t.Errorf("the host's log lacks an error line with the traceback:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
