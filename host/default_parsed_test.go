package host

import (
	"errors"
	"reflect"
	"regexp"
	"testing"
)

// The embedded default's parsed form, kept as Go for the start that finds
// no config file, must be what the YAML parser makes of default.yaml as
// written, on every operating system the os: lists name and whatever the
// environment sets: the same Config (lines and columns included), the same
// expansions behind its messages, and where the fast path declines, the
// parser's own error. Every variable default.yaml reads is set in turn, so
// a ${VAR} added to the file and not to the Go form fails here.
func TestDefaultParsedIsTheDefault(t *testing.T) {
	t.Parallel()
	var vars []string
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindAllSubmatch(defaultConfig, -1) {
		vars = append(vars, string(m[1]))
	}
	if len(vars) != len(defaultExpanded) {
		t.Errorf("default.yaml expands %d values (%v); the Go form, %d", len(vars), vars, len(defaultExpanded))
	}
	envs := []map[string]string{
		{},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "120", "CLAUDE_CONFIG_DIR": "/cfg", "CREDHOST_BUILTIN": "process",
			"CLAUDE_OAUTH_TOKEN_URL": "http://127.0.0.1:1/token", "CLAUDE_CODE_OAUTH_CLIENT_ID": "client"},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "5m"},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": " 60 "},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "0"},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": ""},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "soon"},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "-1"},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "1.5"},
		{"CREDHOST_BUILTIN": "elsewhere"},
		{"CLAUDE_OAUTH_TOKEN_URL": "not a url"},
		{"CLAUDE_OAUTH_TOKEN_URL": "http://example.com/token"},
		{"CLAUDE_CODE_OAUTH_CLIENT_ID": "${NOT_EXPANDED}"},
		{"CLAUDE_CONFIG_DIR": ""},
		{"CLAUDE_CONFIG_DIR": "C:\\Users\\me\\.claude"},
		{"CLAUDE_CONFIG_DIR": "a secret-looking directory name"},
	}
	every := map[string]string{}
	for i, name := range vars {
		every[name] = "value-" + string(rune('a'+i))
	}
	envs = append(envs, every)
	// Quoted values from the environment, which messages must read as
	// the file says them.
	const probe = `"http://127.0.0.1:1/token" client "a secret-looking directory name/.credentials.json" value-b`
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, env := range envs {
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			slow := &parser{source: DefaultSource, lookupEnv: lookup, goos: goos}
			want, wantErr := slow.parse(defaultConfig)
			var wantMsg string
			if want != nil {
				wantMsg = want.unexpand.apply(probe)
			}
			fast := &parser{source: DefaultSource, lookupEnv: lookup, goos: goos}
			got, ok := fast.defaultFast()
			switch {
			case ok && wantErr != nil:
				t.Errorf("%s %v: the fast path loads what the parser refuses: %v", goos, env, wantErr)
			case !ok && wantErr == nil:
				t.Errorf("%s %v: the fast path declines a default the parser loads", goos, env)
			case ok:
				if !reflect.DeepEqual(fast.expanded, slow.expanded) || !reflect.DeepEqual(fast.vars, slow.vars) {
					t.Errorf("%s %v: expansions %v %v; the parser's %v %v", goos, env, fast.expanded, fast.vars, slow.expanded, slow.vars)
				}
				got.unexpand, want.unexpand = unexpander{}, unexpander{}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s %v: config\n%+v\nthe parser gives\n%+v", goos, env, got, want)
				}
			}
			// What the loader calls: the parser's answer, error and all.
			cfg, err := parseDefault(lookup, goos)
			var we, ge *ConfigError
			switch {
			case (err == nil) != (wantErr == nil):
				t.Errorf("%s %v: parseDefault error %v; the parser's %v", goos, env, err, wantErr)
			case err != nil:
				if !errors.As(err, &ge) || !errors.As(wantErr, &we) || *ge != *we {
					t.Errorf("%s %v: parseDefault error %#v; the parser's %#v", goos, env, err, wantErr)
				}
			default:
				if g, w := cfg.unexpand.apply(probe), wantMsg; g != w {
					t.Errorf("%s %v: messages unexpand to %q; the parser's, %q", goos, env, g, w)
				}
				cfg.unexpand, want.unexpand = unexpander{}, unexpander{}
				if !reflect.DeepEqual(cfg, want) {
					t.Errorf("%s %v: parseDefault gives\n%+v\nthe parser\n%+v", goos, env, cfg, want)
				}
			}
		}
	}
}

// BenchmarkLoadDefault times loading the embedded default with no config
// file, as LoadConfig does (default), next to the YAML parser reading the
// same file (parser: what every start paid before), alternated in one run.
// Run with: go test -run '^$' -bench LoadDefault -count 6 ./host | benchstat -
func BenchmarkLoadDefault(b *testing.B) {
	lookup := func(string) (string, bool) { return "", false }
	body := defaultConfigBody()
	for _, bm := range []struct {
		name string
		load func() (*Config, error)
	}{
		{"default", func() (*Config, error) { return parseDefault(lookup, "linux") }},
		{"parser", func() (*Config, error) { return parseConfig(body, DefaultSource, lookup, "linux") }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.load(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
