package host

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/sdk"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig returns a config with the loader's defaults and one provider
// per mode. In process mode each provider is this test binary re-executed
// as a plugin (see serveHelper); otherwise a scriptedProvider in-process.
func testConfig(process bool, modes ...string) *Config {
	cfg := DefaultConfig()
	cfg.Refresh.Buffer = Duration(5 * time.Minute) // the tests' expiries are set around it
	cfg.Source = "test"
	for i, mode := range modes {
		pc := ProviderConfig{Name: "p" + strconv.Itoa(i), Line: i + 1, Column: 3}
		if process {
			pc.Command, pc.Args = os.Args[0], []string{helperArg, mode}
		} else {
			pc.Plugin = mode
		}
		cfg.Providers = append(cfg.Providers, pc)
	}
	return cfg
}

// scriptedBuiltins serves every mode in cfg in-process.
func scriptedBuiltins(cfg *Config) map[string]Builtin {
	b := map[string]Builtin{}
	for _, p := range cfg.Providers {
		if p.Plugin != "" {
			mode := p.Plugin
			b[mode] = Builtin{New: func() sdk.Provider { return scriptedProvider(mode) }}
		}
	}
	return b
}

func newTestHost(t *testing.T, cfg *Config) (*Host, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	h, err := New(cfg, WithLogger(logger), WithBuiltins(scriptedBuiltins(cfg)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h, logs
}

func TestTokenChainWalk(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		modes        []string
		wantProvider string // "" means no credential
		wantToken    string
		wantWarnFor  []string // providers whose fault is logged as a warning
		wantReasons  []string // with wantProvider "", substrings of the chain error
	}{
		"first found wins": {
			modes:        []string{"notfound", "found:A", "found:B"},
			wantProvider: "p1", wantToken: "tok-secret-A",
		},
		"fault is skipped with a warning": {
			modes:        []string{"fail", "found:A"},
			wantProvider: "p1", wantToken: "tok-secret-A", wantWarnFor: []string{"p0"},
		},
		"empty access token is a fault": {
			modes:        []string{"empty", "found:A"},
			wantProvider: "p1", wantToken: "tok-secret-A", wantWarnFor: []string{"p0"},
		},
		"bad provider config is a fault": {
			modes:        []string{"badconfig", "found:A"},
			wantProvider: "p1", wantToken: "tok-secret-A", wantWarnFor: []string{"p0"},
		},
		"nothing anywhere lists every provider": {
			modes: []string{"notfound", "fail", "badconfig"},
			wantReasons: []string{
				"p0 (empty): scripted store is empty",
				"p1 (error): scripted store is broken",
				`p2 (error): configure: key "path" is required`,
				"to fix:",
			},
			wantWarnFor: []string{"p1", "p2"},
		},
	}
	for name, tc := range tests {
		for _, process := range []bool{false, true} {
			t.Run(name+modeSuffix(process), func(t *testing.T) {
				t.Parallel()
				h, logs := newTestHost(t, testConfig(process, tc.modes...))
				res, err := h.Token(context.Background())
				if tc.wantProvider == "" {
					if !errors.Is(err, ErrNoCredential) {
						t.Fatalf("Token: got %v; want ErrNoCredential", err)
					}
					var ce *ChainError
					if !errors.As(err, &ce) || len(ce.Attempts) != len(tc.modes) {
						t.Fatalf("Token error %#v: want a *ChainError with %d attempts", err, len(tc.modes))
					}
					for _, r := range tc.wantReasons {
						if !strings.Contains(err.Error(), r) {
							t.Errorf("chain error does not contain %q:\n%v", r, err)
						}
					}
				} else {
					if err != nil {
						t.Fatalf("Token: %v", err)
					}
					if res.Provider != tc.wantProvider || res.Credential.AccessToken != tc.wantToken {
						t.Errorf("Token from %q (fingerprint %s); want %q (%s)", res.Provider, res.Credential.Fingerprint(), tc.wantProvider, sdk.Fingerprint(tc.wantToken))
					}
				}
				h.Close()
				out := logs.String()
				for _, p := range tc.wantWarnFor {
					if !strings.Contains(out, "[WARN]  provider failed; trying the next one: provider="+p) {
						t.Errorf("no warning naming provider %s in logs:\n%s", p, out)
					}
				}
				assertNoSecrets(t, out)
			})
		}
	}
}

// assertNoSecrets fails if any test token shows up in s.
func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, "tok-secret") || strings.Contains(s, "refresh-tok") {
		t.Errorf("a secret appears in output:\n%s", s)
	}
}

func modeSuffix(process bool) string {
	if process {
		return "/plugin process"
	}
	return "/in-process"
}

// TestTokenSurvivesPluginFaults runs plugin processes that break in the ways
// real plugins break; the walk must go on to the next provider each time.
func TestTokenSurvivesPluginFaults(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		mode       string
		wantReason string
	}{
		"crash during read":         {mode: "crash", wantReason: "plugin unavailable"},
		"hang during read":          {mode: "hang", wantReason: "no answer within the call timeout"},
		"garbage before handshake":  {mode: "garbage", wantReason: "start"},
		"exit before handshake":     {mode: "exit", wantReason: "start"},
		"unknown mode is a failure": {mode: "bogus", wantReason: "unknown scripted mode"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(true, tc.mode, "found:A")
			cfg.Plugins.CallTimeout = Duration(500 * time.Millisecond)
			cfg.Plugins.StartTimeout = Duration(5 * time.Second)
			h, logs := newTestHost(t, cfg)
			start := time.Now()
			res, err := h.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if res.Provider != "p1" {
				t.Errorf("Token came from %q; want p1", res.Provider)
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("Token took %v: a broken plugin held up the chain", d)
			}
			h.Close()
			out := logs.String()
			if !strings.Contains(out, "provider=p0") || !strings.Contains(out, tc.wantReason) {
				t.Errorf("logs do not name p0 with %q:\n%s", tc.wantReason, out)
			}
			assertNoSecrets(t, out)
		})
	}
}

func TestChecksumMismatchRefusesToStart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(true, "found:A", "notfound")
	cfg.Providers[0].SHA256 = strings.Repeat("ab", 32)
	h, _ := newTestHost(t, cfg)
	_, err := h.Token(context.Background())
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("Token: got %v; want a *ChainError (the pinned plugin must not run)", err)
	}
	if !strings.Contains(ce.Attempts[0].Error(), "checksum does not match") {
		t.Errorf("attempt 0: %v; want a checksum mismatch", ce.Attempts[0])
	}
}

func TestUnknownBuiltinIsConfigError(t *testing.T) {
	t.Parallel()
	cfg := testConfig(false, "notfound")
	cfg.Providers[0].Line, cfg.Providers[0].Column = 7, 5
	_, err := New(cfg, WithBuiltins(map[string]Builtin{"env": {}}))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "test:7:5: providers[0].plugin") || !strings.Contains(err.Error(), "built-ins are env") {
		t.Fatalf("New: got %v; want a config error at test:7:5 naming providers[0].plugin and the built-ins", err)
	}
}

func TestProvidersStartLazily(t *testing.T) {
	t.Parallel()
	cfg := testConfig(false, "found:A", "found:B")
	var started []string
	var mu sync.Mutex
	b := map[string]Builtin{}
	for _, p := range cfg.Providers {
		mode := p.Plugin
		b[mode] = Builtin{New: func() sdk.Provider {
			mu.Lock()
			started = append(started, mode)
			mu.Unlock()
			return scriptedProvider(mode)
		}}
	}
	h, err := New(cfg, WithBuiltins(b))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for range 3 {
		if _, err := h.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(started) != 1 || started[0] != "found:A" {
		t.Errorf("started %d providers; want only the first, once", len(started))
	}
}

// TestFirstCallerContextDoesNotBreakProvider: a provider starts on the first
// call that reaches it, and that call's context may be cancelled or out of
// time (an HTTP request the client abandoned). That must fail that call
// only: the next call with a live context must get the credential.
func TestFirstCallerContextDoesNotBreakProvider(t *testing.T) {
	t.Parallel()
	tests := map[string]func() (context.Context, context.CancelFunc){
		"cancelled": func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		},
		"deadline passed": func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		},
	}
	for name, firstCtx := range tests {
		for _, process := range []bool{false, true} {
			t.Run(name+modeSuffix(process), func(t *testing.T) {
				t.Parallel()
				h, logs := newTestHost(t, testConfig(process, "found:A"))
				ctx, cancel := firstCtx()
				_, _ = h.Token(ctx) // may fail: its context is done
				cancel()
				res, err := h.Token(context.Background())
				if err != nil {
					t.Fatalf("Token after a first call with a dead context: %v", err)
				}
				if res.Credential.AccessToken != "tok-secret-A" {
					t.Errorf("Token fingerprint %s; want %s", res.Credential.Fingerprint(), sdk.Fingerprint("tok-secret-A"))
				}
				h.Close()
				assertNoSecrets(t, logs.String())
			})
		}
	}
}
