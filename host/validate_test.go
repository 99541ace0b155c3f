package host

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// TestDefaultConfigIsWhatTheLoaderDefaults: a file that leaves every
// optional key out loads as DefaultConfig, and an explicit 0 stays 0.
func TestDefaultConfigIsWhatTheLoaderDefaults(t *testing.T) {
	t.Parallel()
	want := DefaultConfig()
	got, err := ParseConfig([]byte(minimal), "m", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != want.Version || got.Refresh != want.Refresh || got.Plugins != want.Plugins || got.OAuth.Body != want.OAuth.Body {
		t.Errorf("loaded %+v %+v %+v; DefaultConfig has %+v %+v %+v", got.Refresh, got.Plugins, got.OAuth.Body, want.Refresh, want.Plugins, want.OAuth.Body)
	}
	if want.Refresh.Buffer.Std() != 10*time.Minute || want.Plugins.CallTimeout.Std() != 5*time.Second {
		t.Errorf("DefaultConfig: buffer %v, call timeout %v; want 10m and 5s", want.Refresh.Buffer.Std(), want.Plugins.CallTimeout.Std())
	}
	zero, err := ParseConfig([]byte("version: 1\nplugins: {call_timeout: 0}\n"+minimal[11:]), "z", nil)
	if err != nil {
		t.Fatal(err)
	}
	if zero.Plugins.CallTimeout != 0 || zero.Plugins.StartTimeout != want.Plugins.StartTimeout {
		t.Errorf("call_timeout: 0 loaded as %v (start timeout %v); want 0 and the default start timeout", zero.Plugins.CallTimeout.Std(), zero.Plugins.StartTimeout.Std())
	}
}

// TestNewChecksAHandBuiltConfig: New holds a Config built in Go to the
// loader's checks, with an error naming the key (and the provider entry's
// place, when it has one); a valid one keeps its explicit zeros.
func TestNewChecksAHandBuiltConfig(t *testing.T) {
	t.Parallel()
	base := func() *Config {
		cfg := DefaultConfig()
		cfg.Source = "go"
		cfg.Providers = []ProviderConfig{{Name: "a", Plugin: "file", Line: 4, Column: 5}, {Name: "b", Plugin: "file", Line: 6, Column: 5}}
		return cfg
	}
	tests := map[string]struct {
		edit             func(*Config)
		wantKey, wantMsg string
		wantLine         int
	}{
		"a literal without DefaultConfig":  {edit: func(c *Config) { *c = Config{Providers: c.Providers} }, wantKey: "version", wantMsg: "not set; start from DefaultConfig"},
		"negative buffer":                  {edit: func(c *Config) { c.Refresh.Buffer = Duration(-time.Second) }, wantKey: "refresh.buffer", wantMsg: `"-1s" is negative; want a duration >= 0`},
		"negative call timeout":            {edit: func(c *Config) { c.Plugins.CallTimeout = Duration(-time.Minute) }, wantKey: "plugins.call_timeout", wantMsg: "is negative"},
		"http token_url to another host":   {edit: func(c *Config) { c.OAuth.TokenURL = "http://example.com/token" }, wantKey: "oauth.token_url", wantMsg: "plain http is allowed only to a loopback host"},
		"unknown body":                     {edit: func(c *Config) { c.OAuth.Body = "xml" }, wantKey: "oauth.body", wantMsg: `"xml": want form or json`},
		"unknown builtin mode":             {edit: func(c *Config) { c.Plugins.Builtin = "thread" }, wantKey: "plugins.builtin", wantMsg: `"thread": want in-process or process`},
		"no providers":                     {edit: func(c *Config) { c.Providers = nil }, wantKey: "providers", wantMsg: "missing or empty"},
		"duplicate names":                  {edit: func(c *Config) { c.Providers[1].Name = "a" }, wantKey: "providers[1].name", wantMsg: `"a" is also the name of providers[0] (line 4)`, wantLine: 6},
		"refresh_with an unknown provider": {edit: func(c *Config) { c.Providers[0].RefreshWith = []string{"nope"} }, wantKey: "providers[0].refresh_with[0]", wantMsg: `no provider named "nope"`, wantLine: 4},
		"relative command":                 {edit: func(c *Config) { c.Providers[1].Plugin, c.Providers[1].Command = "", "plugin" }, wantKey: "providers[1].command", wantMsg: `"plugin" is not an absolute path`, wantLine: 6},
		"bad environment name":             {edit: func(c *Config) { c.Providers[0].Env = []string{"A-B"} }, wantKey: "providers[0].env[0]", wantMsg: "not an environment variable name", wantLine: 4},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := base()
			tc.edit(cfg)
			h, err := New(cfg, WithBuiltins(map[string]Builtin{"file": {New: func() sdk.Provider { return nil }}}))
			if err == nil {
				h.Close()
				t.Fatalf("New accepted it; want a config error at %s", tc.wantKey)
			}
			var ce *ConfigError
			if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) || ce.Key != tc.wantKey || !strings.Contains(ce.Msg, tc.wantMsg) || ce.Line != tc.wantLine {
				t.Errorf("New: got %v (line %d); want %s: %s at line %d", err, ce.Line, tc.wantKey, tc.wantMsg, tc.wantLine)
			}
		})
	}

	cfg := base()
	cfg.Refresh.Buffer, cfg.Plugins.Builtin, cfg.OAuth.Body = 0, "", ""
	h, err := New(cfg, WithBuiltins(map[string]Builtin{"file": {New: func() sdk.Provider { return nil }}}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer h.Close()
	if got := h.Config(); got.Refresh.Buffer != 0 || got.Plugins.Builtin != BuiltinInProcess || got.OAuth.Body != "form" || got.Plugins.CallTimeout.Std() != 5*time.Second {
		t.Errorf("got buffer %v, builtin %q, body %q, call timeout %v; want the explicit 0 kept and the defaults filled in", got.Refresh.Buffer.Std(), got.Plugins.Builtin, got.OAuth.Body, got.Plugins.CallTimeout.Std())
	}
}
