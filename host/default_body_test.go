package host

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// The embedded default is parsed without its comment lines; it must give
// exactly what the file as written gives, config and errors alike (same
// message, line and column), on every operating system's chain.
func TestDefaultBodyParsesAsTheDefault(t *testing.T) {
	t.Parallel()
	body := defaultConfigBody()
	if got, want := bytes.Count(body, []byte("\n")), bytes.Count(defaultConfig, []byte("\n")); got != want {
		t.Fatalf("the body has %d lines, the default %d", got, want)
	}
	if bytes.Contains(body, []byte("#")) {
		t.Errorf("the body still holds a comment:\n%s", body)
	}
	envs := []map[string]string{
		{},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "120", "CLAUDE_CONFIG_DIR": "/cfg", "CREDHOST_BUILTIN": "process",
			"CLAUDE_OAUTH_TOKEN_URL": "http://127.0.0.1:1/token", "CLAUDE_CODE_OAUTH_CLIENT_ID": "client"},
		{"CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS": "soon"},
		{"CREDHOST_BUILTIN": "elsewhere"},
		{"CLAUDE_OAUTH_TOKEN_URL": "not a url"},
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, env := range envs {
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			want, wantErr := parseConfig(defaultConfig, DefaultSource, lookup, goos)
			got, gotErr := parseConfig(body, DefaultSource, lookup, goos)
			if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
				t.Errorf("%s %v: error %v; the default as written gives %v", goos, env, gotErr, wantErr)
				continue
			}
			var we, ge *ConfigError
			if errors.As(wantErr, &we) && errors.As(gotErr, &ge) && (we.Line != ge.Line || we.Column != ge.Column) {
				t.Errorf("%s %v: error at %d:%d; the default as written at %d:%d", goos, env, ge.Line, ge.Column, we.Line, we.Column)
			}
			if want == nil {
				continue
			}
			const secret = "http://127.0.0.1:1/token client /cfg"
			if g, w := got.unexpand.apply(secret), want.unexpand.apply(secret); g != w {
				t.Errorf("%s %v: messages unexpand to %q; the default as written, %q", goos, env, g, w)
			}
			got.unexpand, want.unexpand = unexpander{}, unexpander{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %v: config\n%+v\nthe default as written gives\n%+v", goos, env, got, want)
			}
		}
	}
}
