package env_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/plugins/env"
	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(func() sdk.Provider { return env.New() })
	os.Exit(m.Run())
}

const testVar = "CREDHOST_ENV_TEST_TOKEN"

func TestConformanceInProcess(t *testing.T) {
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		vars := map[string]string{}
		if s.Seed != nil {
			vars[testVar] = s.Seed.AccessToken
		}
		p := env.New(env.WithLookupEnv(lookup(vars)))
		return s.Configure(t, p, "env", `{"var":"`+testVar+`"}`)
	})
}

func TestConformancePluginProcess(t *testing.T) {
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		var extra []string
		if s.Seed != nil {
			extra = append(extra, testVar+"="+s.Seed.AccessToken)
		}
		return s.Configure(t, sdktest.Process(t, extra...), "env", `{"var":"`+testVar+`"}`)
	})
}

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestRead(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := map[string]struct {
		config      string
		vars        map[string]string
		wantToken   string
		wantExpiry  time.Time
		wantErr     string
		wantMissing bool
	}{
		"set":                {config: `{"var":"T"}`, vars: map[string]string{"T": "tok-1"}, wantToken: "tok-1"},
		"surrounding space":  {config: `{"var":"T"}`, vars: map[string]string{"T": " tok-1\n"}, wantToken: "tok-1"},
		"unset":              {config: `{"var":"T"}`, wantErr: "$T is not set", wantMissing: true},
		"empty":              {config: `{"var":"T"}`, vars: map[string]string{"T": ""}, wantErr: "$T is empty", wantMissing: true},
		"expiry in ms":       {config: `{"var":"T","expires_var":"E"}`, vars: map[string]string{"T": "tok-1", "E": "1904281689000"}, wantToken: "tok-1", wantExpiry: exp},
		"expiry in seconds":  {config: `{"var":"T","expires_var":"E"}`, vars: map[string]string{"T": "tok-1", "E": "1904281689"}, wantToken: "tok-1", wantExpiry: exp},
		"expiry in RFC 3339": {config: `{"var":"T","expires_var":"E"}`, vars: map[string]string{"T": "tok-1", "E": "2030-05-06T07:08:09Z"}, wantToken: "tok-1", wantExpiry: exp},
		"expiry var unset":   {config: `{"var":"T","expires_var":"E"}`, vars: map[string]string{"T": "tok-1"}, wantToken: "tok-1"},
		"bad expiry":         {config: `{"var":"T","expires_var":"E"}`, vars: map[string]string{"T": "tok-1", "E": "soon"}, wantErr: "$E: expiry is not epoch seconds"},
		"prefix ok":          {config: `{"var":"T","token_prefix":"sk-ant-oat01-"}`, vars: map[string]string{"T": "sk-ant-oat01-xyz"}, wantToken: "sk-ant-oat01-xyz"},
		"prefix wrong":       {config: `{"var":"T","token_prefix":"sk-ant-oat01-"}`, vars: map[string]string{"T": "tok-secret"}, wantErr: `$T does not start with "sk-ant-oat01-"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := sdktest.Configure(t, env.New(env.WithLookupEnv(lookup(tc.vars))), "e", tc.config)
			cred, err := p.Read(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Read: got %v; want an error containing %q", err, tc.wantErr)
				}
				if got := errors.Is(err, sdk.ErrNotFound); got != tc.wantMissing {
					t.Errorf("errors.Is(err, ErrNotFound) = %v; want %v", got, tc.wantMissing)
				}
				if strings.Contains(err.Error(), "tok-secret") {
					t.Errorf("error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if cred.AccessToken != tc.wantToken || !cred.ExpiresAt.Equal(tc.wantExpiry) {
				t.Errorf("Read: token %s expiry %v; want %s, %v", cred.Fingerprint(), cred.ExpiresAt, sdk.Fingerprint(tc.wantToken), tc.wantExpiry)
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		`{}`:                          `key "var" is required`,
		`{"var":"T","pth":"x"}`:       `unknown key "pth"`,
		`{"var":"1BAD"}`:              `key "var": "1BAD" is not an environment variable name`,
		`{"var":"T","expires_var":3}`: `key "expires_var": want string, got number`,
	}
	for config, want := range tests {
		t.Run(config, func(t *testing.T) {
			t.Parallel()
			err := env.New().Configure(context.Background(), sdk.ConfigureRequest{Name: "e", Config: []byte(config)})
			if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Configure(%s): got %v; want ErrInvalidConfig containing %q", config, err, want)
			}
		})
	}
}

// TestNotFoundSaysSetTheVariable: the hint the host passes on names the
// variable; the reason does not repeat the sentinel's words.
func TestNotFoundSaysSetTheVariable(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{"unset": {}, "empty": {"T": " "}} {
		p := env.New(env.WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }))
		sdktest.Configure(t, p, "e", `{"var":"T"}`)
		_, err := p.Read(context.Background())
		if !errors.Is(err, sdk.ErrNotFound) || sdk.Hint(err) != "set $T" || !strings.HasPrefix(err.Error(), "$T is ") {
			t.Errorf("%s: got %v (hint %q); want not-found reading \"$T is ...\" with hint \"set $T\"", name, err, sdk.Hint(err))
		}
	}
}

// TestConfigVars is the one place a program learns which variables an env
// provider reads.
func TestConfigVars(t *testing.T) {
	t.Parallel()
	tok, exp := env.ConfigVars(map[string]any{"var": "TOKEN", "expires_var": "TOKEN_EXPIRES", "token_prefix": "x"})
	if tok != "TOKEN" || exp != "TOKEN_EXPIRES" {
		t.Errorf("ConfigVars = %q, %q; want TOKEN, TOKEN_EXPIRES", tok, exp)
	}
	if tok, exp := env.ConfigVars(map[string]any{"var": 3}); tok != "" || exp != "" {
		t.Errorf("ConfigVars of a non-string = %q, %q; want none", tok, exp)
	}
}
