package host

import (
	"bytes"
	_ "embed"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/credhost/credhost/sdk"
)

// defaultConfig is the embedded default: Claude Code's own chain on each
// operating system (enterprise token, OAuth token from the environment, the
// macOS Keychain on macOS only, the credentials file), one file whose
// per-OS entries carry os: lists.
//
//go:embed default.yaml
var defaultConfig []byte

// defaultConfigBody is defaultConfig with every comment line emptied: the
// same keys on the same lines and columns, so a config error points at the
// same place, without the comments yaml.v3 would scan and keep (most of the
// file) on every start that uses the default.
func defaultConfigBody() []byte {
	out := make([]byte, 0, len(defaultConfig))
	for rest := defaultConfig; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if t := bytes.TrimLeft(line, " \t"); len(t) > 0 && t[0] == '#' {
			if line[len(line)-1] == '\n' {
				out = append(out, '\n')
			}
			continue
		}
		out = append(out, line...)
	}
	return out
}

// parseDefault is ParseConfig of the embedded default for goos. The
// default's YAML is fixed, so its parsed form is kept as Go (defaultParsed
// and defaultExpanded): the start that finds no config file, the common
// one, skips scanning, decoding and type-checking the YAML. The ${VAR}
// expansion, the validation and the unexpander are the loader's own, run
// as they are on a file. Whatever the environment makes of the default that
// the fast path does not take as it is (a buffer that is not a duration, a
// value that fails validation) goes through the YAML parser, so every error
// is the parser's, with its line and column.
// TestDefaultParsedIsTheDefault keeps the two in step.
func parseDefault(lookupEnv func(string) (string, bool), goos string) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	p := &parser{source: DefaultSource, lookupEnv: lookupEnv, goos: goos}
	if cfg, ok := p.defaultFast(); ok {
		return cfg, nil
	}
	return parseConfig(defaultConfigBody(), DefaultSource, lookupEnv, goos)
}

// defaultFast is the embedded default's config, or false when the
// environment makes it anything the YAML parser should judge.
func (p *parser) defaultFast() (*Config, bool) {
	cfg := defaultParsed()
	for _, site := range defaultExpanded {
		v, err := expandVars(site.raw, p.lookup)
		if err != nil || !site.set(cfg, v) {
			return nil, false
		}
		if v != site.raw {
			p.expanded = append(p.expanded, expansion{raw: site.raw, value: v})
		}
	}
	cfg.Source = p.source
	if cfg.validate(validator{goos: p.goos, command: p.commandPath}) != nil {
		return nil, false
	}
	cfg.unexpand = p.unexpander()
	return cfg, true
}

// defaultParsed is default.yaml decoded onto DefaultConfig, before its
// ${VAR} values (defaultExpanded) are set and before validation: a new
// value on every call, as the caller may change it. Line and Column are the
// entries' places in default.yaml.
func defaultParsed() *Config {
	cfg := DefaultConfig()
	cfg.Refresh.Timeout = Duration(10 * time.Second)
	cfg.OAuth.ClientIDMetadata = "clientId"
	cfg.OAuth.Scopes = []string{"user:profile", "user:inference", "user:sessions:claude_code", "user:mcp_servers", "user:file_upload"}
	cfg.OAuth.KeepScopes = []string{"user:design:read", "user:design:write", "user:projects:read", "user:projects:write"}
	cfg.OAuth.DefaultExpiresIn = Duration(8 * time.Hour)
	cfg.OAuth.Body = "json"
	cfg.Providers = []ProviderConfig{
		{Name: "enterprise", Plugin: "env", Config: map[string]any{"var": "ANTHROPIC_AUTH_TOKEN"}, Line: 41, Column: 5},
		{Name: "oauth-env", Plugin: "env", Config: map[string]any{"var": "CLAUDE_CODE_OAUTH_TOKEN"}, RefreshWith: []string{"keychain", "file"}, Line: 49, Column: 5},
		{Name: "keychain", OS: []string{"darwin"}, Plugin: "keychain", Line: 60, Column: 5},
		{Name: "file", Plugin: "file", Config: map[string]any{"key": "claudeAiOauth"}, Line: 66, Column: 5},
	}
	return cfg
}

// defaultExpanded are default.yaml's values that hold ${VAR}, in the order
// they stand in the file (the order the parser expands them): the text and
// where its expansion goes. set reports false for a value the YAML parser
// should judge.
var defaultExpanded = []struct {
	raw string
	set func(cfg *Config, v string) bool
}{
	{"${CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS:-600}", func(cfg *Config, v string) bool {
		d, err := sdk.ParseDuration(v)
		cfg.Refresh.Buffer = d
		return err == nil
	}},
	{"${CLAUDE_OAUTH_TOKEN_URL:-https://platform.claude.com/v1/oauth/token}", func(cfg *Config, v string) bool {
		cfg.OAuth.TokenURL = v
		return true
	}},
	{"${CLAUDE_CODE_OAUTH_CLIENT_ID:-9d1c250a-e61b-44d9-88ed-5944d1962f5e}", func(cfg *Config, v string) bool {
		cfg.OAuth.ClientID = v
		return true
	}},
	{"${CREDHOST_BUILTIN:-in-process}", func(cfg *Config, v string) bool {
		cfg.Plugins.Builtin = v
		return true
	}},
	{"${CLAUDE_CONFIG_DIR:-~/.claude}/.credentials.json", func(cfg *Config, v string) bool {
		// The parser gives a value expansion changed in a config: block
		// the type it would have written literally; this one stays a
		// string unless the environment makes it a number or the like.
		cfg.Providers[3].Config["path"] = v
		return v == "" || (&yaml.Node{Kind: yaml.ScalarNode, Value: v}).ShortTag() == "!!str"
	}},
}
