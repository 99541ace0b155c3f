package host

import (
	"strings"
	"testing"

	"github.com/credhost/credhost/sdk"
)

// chainIDConfig is a chain like the default one: an env token, then a file
// store, then an external plugin that names a variable of its own.
const chainIDConfig = `version: 1
refresh:
  buffer: 5m
providers:
  - name: gateway
    plugin: env
    config:
      var: ANTHROPIC_AUTH_TOKEN
  - name: claude-file
    plugin: file
  - name: corp
    command: /opt/corp/plugin
    env: [CORP_TENANT]
`

// chainIDBuiltins say which variables the built-ins read as credhost's do:
// env the one its config names, file $CLAUDE_CONFIG_DIR.
func chainIDBuiltins() map[string]Builtin {
	none := func() sdk.Provider { return nil }
	return map[string]Builtin{
		"env": {New: none, Env: func(c map[string]any) []string {
			v, _ := c["var"].(string)
			return []string{v}
		}},
		"file": {New: none, Env: func(map[string]any) []string { return []string{"CLAUDE_CONFIG_DIR"} }},
	}
}

// chainIDOf is the ChainID of a host for yaml (its ${VAR}s expanded from
// environ) whose process environment is environ.
func chainIDOf(t *testing.T, yaml, source string, environ []string) string {
	t.Helper()
	lookup := func(name string) (string, bool) {
		for _, kv := range environ {
			if k, v, _ := strings.Cut(kv, "="); k == name {
				return v, true
			}
		}
		return "", false
	}
	cfg, err := ParseConfig([]byte(yaml), source, lookup)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	withEnviron := Option(func(o *options) { o.environ = func() []string { return environ } })
	h, err := New(cfg, WithBuiltins(chainIDBuiltins()), withEnviron)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h.ChainID()
}

func TestChainIDSameChainSameIDOtherChainOtherID(t *testing.T) {
	t.Parallel()
	const secret = "sk-ant-oat01-chainid-secret-value"
	baseEnv := []string{"HOME=/home/u", "PATH=/usr/bin", "ANTHROPIC_AUTH_TOKEN=" + secret}
	want := chainIDOf(t, chainIDConfig, "/home/u/.config/credhost/config.yaml", baseEnv)

	for _, tc := range []struct {
		name    string
		yaml    string
		source  string
		environ []string
		same    bool
	}{
		{name: "the same config from another path", source: "/etc/credhost.yaml", same: true},
		{name: "another PATH, locale, time zone and temporary directory (a service's)", environ: []string{baseEnv[0], "PATH=/usr/local/bin:/usr/bin", baseEnv[2], "LANG=C.UTF-8", "TZ=UTC", "TMPDIR=/var/tmp"}, same: true},
		{name: "a variable no provider reads", environ: append(baseEnv[:3:3], "EDITOR=vi", "TERM=xterm"), same: true},
		{name: "the same variables in another order", environ: []string{baseEnv[2], baseEnv[1], baseEnv[0]}, same: true},
		{name: "comments and blank lines move every entry's line", yaml: "# a comment\n\n" + chainIDConfig, same: true},
		{name: "plugins run as processes with other timeouts", yaml: chainIDConfig + "plugins:\n  builtin: process\n  call_timeout: 7s\n", same: true},
		{name: "another refresh timeout", yaml: strings.Replace(chainIDConfig, "buffer: 5m", "buffer: 5m\n  timeout: 41s", 1), same: true},
		{name: "the env token set to another value", environ: []string{baseEnv[0], baseEnv[1], "ANTHROPIC_AUTH_TOKEN=sk-ant-other"}},
		{name: "the env token unset", environ: baseEnv[:2]},
		{name: "the env token set empty", environ: []string{baseEnv[0], baseEnv[1], "ANTHROPIC_AUTH_TOKEN="}},
		{name: "the file store's directory set", environ: append(baseEnv[:3:3], "CLAUDE_CONFIG_DIR=/tmp/other")},
		{name: "a variable a provider's env names", environ: append(baseEnv[:3:3], "CORP_TENANT=blue")},
		{name: "another home (base set)", environ: []string{"HOME=/home/v", baseEnv[1], baseEnv[2]}},
		{name: "another buffer", yaml: strings.Replace(chainIDConfig, "buffer: 5m", "buffer: 6m", 1)},
		{name: "the env provider reads another variable", yaml: strings.Replace(chainIDConfig, "var: ANTHROPIC_AUTH_TOKEN", "var: OTHER_TOKEN", 1)},
		{name: "providers in another order", yaml: strings.Replace(chainIDConfig, "  - name: claude-file\n    plugin: file\n", "", 1) + "  - name: claude-file\n    plugin: file\n"},
		{name: "another plugin argument", yaml: strings.Replace(chainIDConfig, "/opt/corp/plugin\n", "/opt/corp/plugin\n    args: [--tenant, red]\n", 1)},
		{name: "another oauth client", yaml: chainIDConfig + "oauth:\n  client_id: someone-else\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			yaml, source, environ := tc.yaml, tc.source, tc.environ
			if yaml == "" {
				yaml = chainIDConfig
			}
			if source == "" {
				source = "/home/u/.config/credhost/config.yaml"
			}
			if environ == nil {
				environ = baseEnv
			}
			got := chainIDOf(t, yaml, source, environ)
			if (got == want) != tc.same {
				t.Errorf("ChainID %s the default's (%s vs %s); want it %s", map[bool]string{true: "equals", false: "differs from"}[got == want], got, want, map[bool]string{true: "equal", false: "different"}[tc.same])
			}
			if strings.Contains(got, secret) || strings.Contains(got, "sk-ant") {
				t.Errorf("ChainID %q holds the token", got)
			}
		})
	}
}

// A ${VAR} in the config is part of the chain as expanded: two files that
// read the same but expand differently are different chains.
func TestChainIDCoversExpandedConfig(t *testing.T) {
	t.Parallel()
	yaml := strings.Replace(chainIDConfig, "/opt/corp/plugin", "${CORP_DIR}/plugin", 1)
	a := chainIDOf(t, yaml, "c.yaml", []string{"HOME=/h", "CORP_DIR=/opt/a"})
	b := chainIDOf(t, yaml, "c.yaml", []string{"HOME=/h", "CORP_DIR=/opt/b"})
	literal := chainIDOf(t, chainIDConfig, "c.yaml", []string{"HOME=/h", "CORP_DIR=/opt/corp"})
	same := chainIDOf(t, yaml, "c.yaml", []string{"HOME=/h", "CORP_DIR=/opt/corp"})
	if a == b {
		t.Errorf("configs expanding to different commands have the same ChainID %s", a)
	}
	if same != literal {
		t.Errorf("a config expanding to the literal one has ChainID %s; the literal one %s", same, literal)
	}
}

// The ID is computed from the environment as it is when called.
func TestChainIDFollowsTheEnvironment(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(chainIDConfig), "c.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	environ := []string{"ANTHROPIC_AUTH_TOKEN=a"}
	h, err := New(cfg, WithBuiltins(chainIDBuiltins()), Option(func(o *options) { o.environ = func() []string { return environ } }))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	before := h.ChainID()
	if again := h.ChainID(); again != before {
		t.Fatalf("ChainID changed between two calls: %s, %s", before, again)
	}
	environ = []string{"ANTHROPIC_AUTH_TOKEN=b"}
	if after := h.ChainID(); after == before {
		t.Errorf("ChainID %s did not change with the environment", after)
	}
}
