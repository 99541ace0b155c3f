package host

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

const minimal = "version: 1\nproviders:\n  - {name: f, plugin: file}\n"

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		yaml     string
		env      map[string]string
		wantKey  string
		wantLine int
		wantCol  int
		wantMsg  string
	}{
		"unknown top-level key":     {yaml: "version: 1\nproviderz: []\n", wantKey: "providerz", wantLine: 2, wantCol: 1, wantMsg: `unknown key "providerz"`},
		"unknown refresh key":       {yaml: "version: 1\nrefresh:\n  bufer: 5m\n", wantKey: "refresh.bufer", wantLine: 3, wantCol: 3, wantMsg: "known keys here: buffer, timeout"},
		"unknown provider key":      {yaml: "version: 1\nproviders:\n  - name: f\n    plugin: file\n    pathh: /x\n", wantKey: "providers[0].pathh", wantLine: 5, wantCol: 5},
		"unknown in flow map":       {yaml: "version: 1\nproviders: [{name: f, plugin: file, cmd: x}]\n", wantKey: "providers[0].cmd", wantLine: 2, wantCol: 37},
		"duplicate key":             {yaml: "version: 1\nversion: 1\n", wantKey: "version", wantLine: 2, wantCol: 1, wantMsg: "duplicate key"},
		"providers not a list":      {yaml: "version: 1\nproviders: 3\n", wantKey: "providers", wantLine: 2, wantCol: 12, wantMsg: "want a list, got a number"},
		"buffer is a list":          {yaml: "version: 1\nrefresh: {buffer: [1]}\n", wantKey: "refresh.buffer", wantLine: 2, wantCol: 19, wantMsg: "want a duration"},
		"negative buffer":           {yaml: "version: 1\nrefresh: {buffer: -5s}\n" + minimal[11:], wantKey: "refresh.buffer", wantLine: 2, wantCol: 19, wantMsg: `"-5s" is negative`},
		"negative seconds":          {yaml: "version: 1\nrefresh: {buffer: -5}\n", wantKey: "refresh.buffer", wantMsg: `"-5" is negative`},
		"unparsable buffer":         {yaml: "version: 1\nrefresh: {buffer: soon}\n", wantKey: "refresh.buffer", wantMsg: `"soon" is not a duration`},
		"buffer from env, bad":      {yaml: "version: 1\nrefresh: {buffer: \"${B:-300}\"}\n", env: map[string]string{"B": "-5"}, wantKey: "refresh.buffer", wantMsg: `"${B:-300}" is negative`},
		"version missing":           {yaml: "providers: []\n", wantKey: "version", wantMsg: "missing; want version: 1"},
		"version 2":                 {yaml: "version: 2\n" + minimal[11:], wantKey: "version", wantLine: 1, wantCol: 10, wantMsg: "2 is not supported"},
		"version a string":          {yaml: "version: one\n", wantKey: "version", wantMsg: "want a whole number"},
		"no providers":              {yaml: "version: 1\n", wantKey: "providers", wantMsg: "missing or empty"},
		"empty providers":           {yaml: "version: 1\nproviders: []\n", wantKey: "providers", wantLine: 2, wantMsg: "missing or empty"},
		"empty provider entry":      {yaml: "version: 1\nproviders:\n  -\n  - {name: f, plugin: file}\n", wantKey: "providers[0]", wantLine: 3, wantMsg: "empty entry"},
		"config a list":             {yaml: "version: 1\nproviders:\n  - {name: f, plugin: file, config: [1]}\n", wantKey: "providers[0].config", wantLine: 3, wantCol: 37, wantMsg: "want a mapping, got a list"},
		"config a string":           {yaml: "version: 1\nproviders:\n  - {name: f, plugin: file, config: abc}\n", wantKey: "providers[0].config", wantLine: 3, wantCol: 37, wantMsg: "want a mapping, got a string"},
		"empty refresh_with item":   {yaml: "version: 1\nproviders:\n  - {name: e, plugin: env, refresh_with: [~, f]}\n  - {name: f, plugin: file}\n", wantKey: "providers[0].refresh_with[0]", wantLine: 3, wantCol: 43, wantMsg: "empty entry"},
		"version overflows":         {yaml: "version: 9223372036854775808\n", wantKey: "version", wantLine: 1, wantCol: 10, wantMsg: "want a whole number"},
		"name invalid base64":       {yaml: "version: 1\nproviders: [{name: !!binary '%%', plugin: env}]\n", wantKey: "providers[0].name", wantLine: 2, wantCol: 20, wantMsg: "invalid base64"},
		"provider without name":     {yaml: "version: 1\nproviders:\n  - plugin: file\n", wantKey: "providers[0].name", wantLine: 3, wantCol: 5, wantMsg: "missing"},
		"bad provider name":         {yaml: "version: 1\nproviders:\n  - {name: 'a b', plugin: file}\n", wantKey: "providers[0].name", wantMsg: `"a b": use letters`},
		"name from the environment": {yaml: "version: 1\nproviders:\n  - {name: \"${N}\", plugin: file}\n", env: map[string]string{"N": "corp"}, wantKey: "providers[0].name", wantLine: 3, wantMsg: `"${N}": write the name literally`},
		"duplicate names":           {yaml: "version: 1\nproviders:\n  - {name: f, plugin: file}\n  - {name: f, plugin: env}\n", wantKey: "providers[1].name", wantLine: 4, wantMsg: "also the name of providers[0] (line 3)"},
		"plugin and command":        {yaml: "version: 1\nproviders:\n  - {name: f, plugin: file, command: /x}\n", wantKey: "providers[0]", wantMsg: "both set"},
		"neither":                   {yaml: "version: 1\nproviders:\n  - {name: f}\n", wantKey: "providers[0]", wantMsg: "want plugin"},
		"sha256 on a built-in":      {yaml: "version: 1\nproviders:\n  - {name: f, plugin: file, sha256: abc}\n", wantKey: "providers[0].sha256", wantMsg: "pins an external command"},
		"sha256 too short":          {yaml: "version: 1\nproviders:\n  - {name: f, command: /x, sha256: abc}\n", wantKey: "providers[0].sha256", wantMsg: "64 hex digits"},
		"script on a built-in":      {yaml: "version: 1\nproviders:\n  - {name: f, plugin: file, script: /s.py}\n", wantKey: "providers[0].script", wantMsg: "goes with command (the interpreter"},
		"script pin without script": {yaml: "version: 1\nproviders:\n  - {name: f, command: /x, script_sha256: abc}\n", wantKey: "providers[0].script_sha256", wantMsg: "goes with script, which is not set"},
		"script pin too short":      {yaml: "version: 1\nproviders:\n  - {name: f, command: /x, script: /s.py, script_sha256: abc}\n", wantKey: "providers[0].script_sha256", wantMsg: "64 hex digits"},
		"modules without tree hash": {yaml: "version: 1\nproviders:\n  - {name: f, command: /x, script: /s.py, modules: /lib}\n", wantKey: "providers[0].modules", wantMsg: "set modules_sha256"},
		"tree hash without modules": {yaml: "version: 1\nproviders:\n  - {name: f, command: /x, modules_sha256: abc}\n", wantKey: "providers[0].modules_sha256", wantMsg: "goes with modules, which is not set"},
		"args on a built-in":        {yaml: "version: 1\nproviders:\n  - {name: f, plugin: file, args: [x]}\n", wantKey: "providers[0].args", wantMsg: "go with command"},
		"refresh_with unknown":      {yaml: "version: 1\nproviders:\n  - {name: e, plugin: env, refresh_with: [nope]}\n", wantKey: "providers[0].refresh_with[0]", wantLine: 3, wantCol: 43, wantMsg: `no provider named "nope"`},
		"refresh_with itself":       {yaml: "version: 1\nproviders:\n  - {name: e, plugin: env, refresh_with: [e]}\n", wantKey: "providers[0].refresh_with[0]", wantMsg: "through itself"},
		"bad body":                  {yaml: "version: 1\noauth: {body: xml}\n" + minimal[11:], wantKey: "oauth.body", wantMsg: `"xml": want form or json`},
		"bad token url":             {yaml: "version: 1\noauth: {token_url: /token}\n" + minimal[11:], wantKey: "oauth.token_url", wantMsg: "not an absolute http(s) URL"},
		"token url over plain http": {yaml: "version: 1\noauth:\n  token_url: http://auth.example.com/token\n" + minimal[11:], wantKey: "oauth.token_url", wantLine: 3, wantCol: 14, wantMsg: "plain http is allowed only to a loopback host"},
		"bad builtin mode":          {yaml: "version: 1\nplugins: {builtin: thread}\n" + minimal[11:], wantKey: "plugins.builtin", wantMsg: `"thread": want in-process or process`},
		"config key not string":     {yaml: "version: 1\nproviders:\n  - {name: f, plugin: file, config: {1: x}}\n", wantKey: "providers[0].config", wantMsg: `key "1" is not a string`},
		"unterminated expansion":    {yaml: "version: 1\noauth: {client_id: \"${X\"}\n", wantKey: "", wantLine: 2, wantMsg: "unterminated ${"},
		"bad variable name":         {yaml: "version: 1\noauth: {client_id: \"${1X}\"}\n", wantLine: 2, wantMsg: "not an environment variable name"},
		"not YAML":                  {yaml: "version: 1\n  bad: [\n", wantMsg: "not valid YAML"},
		"a list, not a mapping":     {yaml: "- a\n- b\n", wantLine: 1, wantCol: 1, wantMsg: "the config is a list"},
		"empty":                     {yaml: "", wantMsg: "the config is empty"},
		"two documents":             {yaml: minimal + "---\n" + minimal, wantMsg: "more than one YAML document"},
		"alias":                     {yaml: "version: 1\nproviders:\n  - {name: f, plugin: file, config: {a: &x 1, b: *x}}\n", wantLine: 3, wantMsg: "aliases are not supported"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig([]byte(tc.yaml), "test.yaml", env(tc.env))
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v; want a *ConfigError wrapping ErrConfig", err)
			}
			if ce.Key != tc.wantKey {
				t.Errorf("key %q; want %q (%v)", ce.Key, tc.wantKey, err)
			}
			if tc.wantLine != 0 && ce.Line != tc.wantLine {
				t.Errorf("line %d; want %d (%v)", ce.Line, tc.wantLine, err)
			}
			if tc.wantCol != 0 && ce.Column != tc.wantCol {
				t.Errorf("column %d; want %d (%v)", ce.Column, tc.wantCol, err)
			}
			if !strings.Contains(ce.Msg, tc.wantMsg) {
				t.Errorf("message %q; want it to contain %q", ce.Msg, tc.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), "test.yaml") {
				t.Errorf("error %q does not start with the source", err)
			}
		})
	}
}

func TestExpandVars(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"SET": "value", "EMPTY": "", "URL": "https://a.example:8443/x"}
	tests := map[string]string{
		"${SET}":                      "value",
		"${UNSET}":                    "",
		"${UNSET:-dflt}":              "dflt",
		"${EMPTY:-dflt}":              "dflt",
		"${SET:-dflt}":                "value",
		"${UNSET:-https://h:1/p?q=1}": "https://h:1/p?q=1",
		"$${SET}":                     "${SET}",
		"cost $5":                     "cost $5",
		"a$":                          "a$",
		"${URL}/token":                "https://a.example:8443/x/token",
		"${SET}${SET}":                "valuevalue",
		"pre-${SET}-post":             "pre-value-post",
	}
	for in, want := range tests {
		got, err := expandVars(in, env(vars))
		if err != nil || got != want {
			t.Errorf("expandVars(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// A provider's name labels the daemon's metrics and shows in every message:
// a ${VAR} there would put the environment's value (perhaps a token that
// happens to use only name characters) into all of them.
func TestProviderNameFromEnvironmentRefusedWithoutItsValue(t *testing.T) {
	t.Parallel()
	const secret = "sk-ant-oat01-namelike_secret"
	_, err := ParseConfig([]byte("version: 1\nproviders:\n  - {name: \"${TOKEN}\", plugin: file}\n"), "t", env(map[string]string{"TOKEN": secret}))
	if err == nil || !strings.Contains(err.Error(), "${TOKEN}") {
		t.Fatalf("got %v; want the name refused as written", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q holds the variable's value", err)
	}
}

func TestExpansionNeverTouchesKeys(t *testing.T) {
	t.Parallel()
	_, err := ParseConfig([]byte("version: 1\n${K}: x\n"+minimal[11:]), "t", env(map[string]string{"K": "oauth"}))
	if err == nil || !strings.Contains(err.Error(), `unknown key "${K}"`) {
		t.Errorf("got %v; want the key left unexpanded and unknown", err)
	}
}

func TestParseConfigValues(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "config", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data, "full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Refresh.Buffer.Std() != 2*time.Minute || cfg.Refresh.Timeout.Std() != 20*time.Second ||
		cfg.OAuth.Body != "json" || cfg.OAuth.DefaultExpiresIn.Std() != time.Hour || cfg.OAuth.Scopes[0] != "user:inference" ||
		cfg.Plugins.Builtin != BuiltinProcess || cfg.Plugins.StartTimeout.Std() != 3*time.Second || cfg.Plugins.CallTimeout.Std() != time.Second {
		t.Errorf("values not decoded: %+v", cfg)
	}
	corp := cfg.Providers[3]
	if corp.Command != "/opt/corp/plugin" || strings.Join(corp.Args, " ") != "--region eu" || corp.SHA256 != strings.ToLower(corp.SHA256) || corp.Line != 21 || corp.Column != 5 {
		t.Errorf("corp provider: %+v", corp)
	}
	js, err := json.Marshal(cfg.Providers[2].Config)
	if err != nil || string(js) != `{"key":"claudeAiOauth","nested":{"list":[1,"two",{"three":3}]},"path":"/tmp/creds.json"}` {
		t.Errorf("file config as JSON: %s, %v", js, err)
	}

	cfg, err = ParseConfig([]byte(minimal), "m", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Refresh.Buffer.Std() != defaultBuffer || cfg.Refresh.Timeout.Std() != defaultRefreshTimeout || cfg.OAuth.Body != "form" ||
		cfg.Plugins.Builtin != BuiltinInProcess || cfg.Plugins.StartTimeout.Std() != defaultStartTimeout || cfg.Plugins.CallTimeout.Std() != defaultCallTimeout {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	cfg, err = ParseConfig([]byte("version: 1\nrefresh: {buffer: 0}\n"+minimal[11:]), "z", nil)
	if err != nil || cfg.Refresh.Buffer != 0 {
		t.Errorf("buffer: 0 became %v (%v); want 0 kept", cfg.Refresh.Buffer.Std(), err)
	}
}

func TestEmbeddedDefault(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env        map[string]string
		wantBuffer time.Duration
		wantURL    string
		wantClient string
		wantPath   string
		wantErr    string
	}{
		"empty environment": {wantBuffer: 10 * time.Minute, wantURL: "https://platform.claude.com/v1/oauth/token", wantClient: "9d1c250a-e61b-44d9-88ed-5944d1962f5e", wantPath: "~/.claude/.credentials.json"},
		"overrides": {
			env:        map[string]string{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "60", "CLAUDE_OAUTH_TOKEN_URL": "http://127.0.0.1:9/t", "CLAUDE_CONFIG_DIR": "/cfg", "CLAUDE_CODE_OAUTH_CLIENT_ID": "my-client"},
			wantBuffer: time.Minute, wantURL: "http://127.0.0.1:9/t", wantClient: "my-client", wantPath: "/cfg/.credentials.json",
		},
		"negative buffer":   {env: map[string]string{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "-5"}, wantErr: `embedded default:14:11: refresh.buffer: "${CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS:-600}" is negative`},
		"unparsable buffer": {env: map[string]string{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "lots"}, wantErr: `"${CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS:-600}" is not a duration`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseConfig(DefaultConfigYAML(), DefaultSource, env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			file := cfg.Providers[len(cfg.Providers)-1]
			if cfg.Refresh.Buffer.Std() != tc.wantBuffer || cfg.OAuth.TokenURL != tc.wantURL || cfg.OAuth.ClientID != tc.wantClient || file.Config["path"] != tc.wantPath ||
				cfg.OAuth.Body != "json" || cfg.OAuth.DefaultExpiresIn.Std() != 8*time.Hour || cfg.OAuth.ClientIDMetadata != "clientId" ||
				strings.Join(cfg.OAuth.Scopes, " ") != "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload" ||
				strings.Join(cfg.OAuth.KeepScopes, " ") != "user:design:read user:design:write user:projects:read user:projects:write" {
				t.Errorf("default config: %+v", cfg)
			}
		})
	}
}

// TestEmbeddedDefaultPerOS checks the one embedded default as every OS
// loads it: each mirrors where Claude Code keeps its login there (the
// Keychain, then the file, on macOS; the file alone on Linux and Windows),
// and refresh_with skips the store left out.
func TestEmbeddedDefaultPerOS(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ chain, refreshWith string }{
		"darwin":  {"enterprise,oauth-env,keychain,file", "keychain,file"},
		"linux":   {"enterprise,oauth-env,file", "file"},
		"windows": {"enterprise,oauth-env,file", "file"},
		"freebsd": {"enterprise,oauth-env,file", "file"},
	}
	for goos, tc := range tests {
		t.Run(goos, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseConfig(DefaultConfigYAML(), DefaultSource, env(nil), goos)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range cfg.Providers {
				names = append(names, p.Name)
			}
			if got := strings.Join(names, ","); got != tc.chain {
				t.Errorf("chain %s; want %s", got, tc.chain)
			}
			if got := strings.Join(cfg.Providers[1].RefreshWith, ","); got != tc.refreshWith {
				t.Errorf("oauth-env refresh_with %s; want %s", got, tc.refreshWith)
			}
		})
	}
	if _, err := os.Stat("default_windows.yaml"); err == nil {
		t.Errorf("default_windows.yaml is back: the one default.yaml carries every OS")
	}
}

// TestProviderOSList checks the os: key: entries for other systems are
// checked, then left out, with their names dropped from refresh_with.
func TestProviderOSList(t *testing.T) {
	t.Parallel()
	const base = "version: 1\nproviders:\n"
	tests := map[string]struct {
		yaml, goos, chain, refreshWith, wantErr string
	}{
		"kept on its OS":             {yaml: base + "  - {name: a, plugin: env, refresh_with: [k]}\n  - {name: k, plugin: keychain, os: [darwin, linux]}\n", goos: "linux", chain: "a,k", refreshWith: "k"},
		"left out elsewhere":         {yaml: base + "  - {name: a, plugin: env, refresh_with: [k, f]}\n  - {name: k, plugin: keychain, os: [darwin]}\n  - {name: f, plugin: file}\n", goos: "windows", chain: "a,f", refreshWith: "f"},
		"unknown OS":                 {yaml: base + "  - {name: k, plugin: keychain, os: [macos]}\n", goos: "darwin", wantErr: `z:3:38: providers[0].os[0]: "macos" is not an operating system; want Go's names: aix, android, darwin`},
		"checked even when left out": {yaml: base + "  - {name: f, plugin: file}\n  - {name: k, plugin: keychain, os: [darwin], refresh_with: [nope]}\n", goos: "linux", wantErr: `no provider named "nope"`},
		"empty list":                 {yaml: base + "  - {name: k, plugin: keychain, os: []}\n", goos: "linux", wantErr: "providers[0].os: empty list"},
		"nothing left":               {yaml: base + "  - {name: k, plugin: keychain, os: [darwin]}\n", goos: "linux", wantErr: "none applies to linux"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseConfig([]byte(tc.yaml), "z", env(nil), tc.goos)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want ErrConfig containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range cfg.Providers {
				names = append(names, p.Name)
			}
			if got := strings.Join(names, ","); got != tc.chain {
				t.Errorf("chain %s; want %s", got, tc.chain)
			}
			if got := strings.Join(cfg.Providers[0].RefreshWith, ","); got != tc.refreshWith {
				t.Errorf("refresh_with %s; want %s", got, tc.refreshWith)
			}
		})
	}
}

func TestExampleConfigParses(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig(data, "config.example.yaml", nil); err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
}

func TestLoadConfigResolution(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, providerName string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte("version: 1\nproviders:\n  - {name: "+providerName+", plugin: file}\n"), 0o600)
		return p
	}
	flag := write("flag.yaml", "from-flag")
	envFile := write("env.yaml", "from-env")
	write("xdg/credhost/config.yaml", "from-xdg")
	write("home/.config/credhost/config.yaml", "from-home")
	system := write("etc/credhost/config.yaml", "from-system")
	noSystem := filepath.Join(dir, "etc", "none", "config.yaml")
	home := filepath.Join(dir, "home")
	tests := map[string]struct {
		path       string
		env        map[string]string
		home       string
		system     string // default: absent
		want       string
		wantOrigin string
		wantErr    string
	}{
		"flag first":                {path: flag, env: map[string]string{"CREDHOST_CONFIG": envFile, "XDG_CONFIG_HOME": filepath.Join(dir, "xdg")}, system: system, want: "from-flag", wantOrigin: OriginFlag},
		"then CREDHOST_CONFIG":      {env: map[string]string{"CREDHOST_CONFIG": envFile, "XDG_CONFIG_HOME": filepath.Join(dir, "xdg")}, system: system, want: "from-env", wantOrigin: OriginEnv},
		"then XDG_CONFIG_HOME":      {env: map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "xdg")}, home: home, system: system, want: "from-xdg", wantOrigin: OriginUser},
		"then ~/.config":            {home: home, system: system, want: "from-home", wantOrigin: OriginUser},
		"then the system config":    {env: map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "none")}, home: home, system: system, want: "from-system", wantOrigin: OriginSystem},
		"system without a home":     {home: filepath.Join(dir, "nohome"), system: system, want: "from-system", wantOrigin: OriginSystem},
		"missing XDG file falls":    {env: map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "none")}, home: home, want: "enterprise", wantOrigin: OriginDefault},
		"then the embedded default": {home: filepath.Join(dir, "nohome"), want: "enterprise", wantOrigin: OriginDefault},
		"missing flag file":         {path: filepath.Join(dir, "nope.yaml"), wantErr: "nope.yaml: cannot read the config file named by --config: no such file or directory"},
		"missing env file":          {env: map[string]string{"CREDHOST_CONFIG": filepath.Join(dir, "nope.yaml")}, wantErr: "named by $CREDHOST_CONFIG"},
		"system config is a folder": {home: filepath.Join(dir, "nohome"), system: filepath.Join(dir, "etc", "credhost"), wantErr: "is not a regular file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if tc.system == "" {
				tc.system = noSystem
			}
			cfg, err := LoadConfig(LoadOptions{Path: tc.path, SystemPath: tc.system, LookupEnv: env(tc.env), UserHomeDir: func() (string, error) { return tc.home, nil }})
			if tc.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want ErrConfig containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Providers[0].Name != tc.want {
				t.Errorf("loaded %s (first provider %q); want %q", cfg.Source, cfg.Providers[0].Name, tc.want)
			}
			if cfg.Origin != tc.wantOrigin {
				t.Errorf("origin %q; want %q", cfg.Origin, tc.wantOrigin)
			}
		})
	}
}

func TestLoadConfigCapsSize(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(p, []byte(strings.Repeat("#", maxConfigSize+1)), 0o600)
	_, err := LoadConfig(LoadOptions{Path: p, LookupEnv: env(nil)})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("got %v; want a size error", err)
	}
}

func TestExampleConfigsParse(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join("..", "examples", "configs", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no example configs found")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseConfig(data, f, env(nil)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestConfigErrorsQuoteTheFileNotTheEnvironment: a value from ${VAR} may be
// a secret; every error that quotes a value quotes ${VAR}, as the file
// says, never what it expanded to.
func TestConfigErrorsQuoteTheFileNotTheEnvironment(t *testing.T) {
	t.Parallel()
	const secret = "sk-ant-secret-value"
	vars := map[string]string{"SECRET": secret, "HALF": "sk-ant-\n-value"}
	tests := map[string]struct{ yaml, want string }{
		"body":              {"version: 1\noauth: {body: '${SECRET}'}\n" + minimal[11:], `"${SECRET}": want form or json`},
		"token_url":         {"version: 1\noauth: {token_url: '${SECRET}'}\n" + minimal[11:], `"${SECRET}" is not an absolute`},
		"token_url in part": {"version: 1\noauth: {token_url: 'http://x/${SECRET}'}\n" + minimal[11:], `"http://x/${SECRET}": plain http`},
		"builtin mode":      {"version: 1\nplugins: {builtin: '${SECRET}'}\n" + minimal[11:], `"${SECRET}": want in-process`},
		"duration":          {"version: 1\nrefresh: {buffer: '${SECRET}'}\n" + minimal[11:], `"${SECRET}" is not a duration`},
		"whole number":      {"version: '${SECRET}'\n", `"${SECRET}"`},
		"provider name":     {"version: 1\nproviders:\n  - {name: '${HALF}', plugin: file}\n", `"${HALF}": write the name literally`},
		"refresh_with":      {"version: 1\nproviders:\n  - {name: e, plugin: env, refresh_with: ['${SECRET}']}\n", `no provider named "${SECRET}"`},
		"escaped in %q":     {"version: 1\noauth: {body: '${HALF}'}\n" + minimal[11:], `"${HALF}": want form or json`},
		"with a default":    {"version: 1\noauth: {body: '${UNSET:-sk-ant-default-secret}'}\n" + minimal[11:], `"${UNSET:-sk-ant-default-secret}"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig([]byte(tc.yaml), "test.yaml", env(vars))
			if err == nil {
				t.Fatal("parsed; want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "secret-value") || strings.Contains(msg, `sk-ant-\n`) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q; want it to quote %s and not the value", msg, tc.want)
			}
		})
	}
	t.Run("unknown built-in", func(t *testing.T) {
		t.Parallel()
		cfg, err := ParseConfig([]byte("version: 1\nproviders:\n  - {name: s, plugin: '${SECRET}'}\n"), "test.yaml", env(vars))
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(cfg)
		if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), `no built-in plugin "${SECRET}"`) {
			t.Errorf("New: %v; want the plugin quoted as ${SECRET}", err)
		}
	})
}

// TestUnexpandKeepsPathsAndWords: taking expansions back out of messages
// must not garble them: a short value ("in-process") or a path is replaced
// only where it is quoted whole, so a message still names the real file.
func TestUnexpandKeepsPathsAndWords(t *testing.T) {
	t.Parallel()
	u := newUnexpander([]expansion{
		{raw: "${CREDHOST_BUILTIN:-in-process}", value: "in-process"},
		{raw: "${CLAUDE_CONFIG_DIR}", value: "/home/alice/.claude-work"},
		{raw: "${SECRET}", value: "sk_ant_secret_value"},
		{raw: "FOO_${SHORT}", value: "FOO_hunter2"},
		{raw: "${SHORT}", value: "hunter2"},
		{raw: "${CREDHOST_BUILTIN}", value: "process"},
	})
	tests := map[string]string{
		`no credentials file at /tmp/TestX-in-process/.credentials.json`: `no credentials file at /tmp/TestX-in-process/.credentials.json`,
		`/home/alice/.claude-work/.credentials.json is mode 0644`:        `/home/alice/.claude-work/.credentials.json is mode 0644`,
		`builtin "in-process": bad`:                                      `builtin "${CREDHOST_BUILTIN:-in-process}": bad`,
		`path "/home/alice/.claude-work": not a directory`:               `path "${CLAUDE_CONFIG_DIR}": not a directory`,
		`$sk_ant_secret_value is not set`:                                `${SECRET} is not set`,
		`$hunter2 is not set`:                                            `${SHORT} is not set`,
		`$FOO_hunter2 is not set`:                                        `$FOO_${SHORT} is not set`,
		`hunter2 and process`:                                            `hunter2 and process`,
	}
	for in, want := range tests {
		if got := u.apply(in); got != want {
			t.Errorf("apply(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestExpandedConfigValuesKeepTheirYAMLType: a value ${VAR} expansion
// produced inside a provider's config: block reaches the plugin with the
// type it would have had written literally; quoting forces a string.
func TestExpandedConfigValuesKeepTheirYAMLType(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"NUM": "42", "FLOAT": "1.5", "YES": "false", "WORD": "hello", "EMPTY": ""}
	tests := map[string]struct {
		value string
		want  string // the value as JSON
	}{
		"default bool":         {`${UNSET:-true}`, `true`},
		"bool from variable":   {`${YES}`, `false`},
		"number":               {`${NUM}`, `42`},
		"float":                {`${FLOAT}`, `1.5`},
		"word stays a string":  {`${WORD}`, `"hello"`},
		"mixed text":           {`${NUM}s`, `"42s"`},
		"double quoted":        {`"${NUM}"`, `"42"`},
		"single quoted":        {`'${UNSET:-true}'`, `"true"`},
		"explicit string tag":  {`!!str ${NUM}`, `"42"`},
		"empty stays a string": {`${EMPTY}`, `""`},
		"literal number":       {`7`, `7`},
		"nested in a list":     {"\n        - ${NUM}\n        - ${WORD}", `[42,"hello"]`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := "version: 1\nproviders:\n  - name: s\n    plugin: file\n    config:\n      v: " + tc.value + "\n"
			cfg, err := ParseConfig([]byte(doc), "t.yaml", env(vars))
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(cfg.Providers[0].Config["v"])
			if err != nil || string(got) != tc.want {
				t.Errorf("config v: %s reached the plugin as %s (%v); want %s", tc.value, got, err, tc.want)
			}
		})
	}
}
