package sdk_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// sharedOptions stands for a helper's options that providers embed (as
// secretstore.Options is), whose keys the config spells without its name.
type sharedOptions struct {
	Format  string       `json:"format"`
	Timeout sdk.Duration `json:"timeout"`
}

type durationConfig struct {
	Name string `json:"name"`
	sharedOptions
	Every *sdk.Duration `json:"every"`
}

// TestDurationSyntax: a provider's duration reads as the host's does, a
// Go duration or whole seconds, as a JSON string or number; a bad one is
// an error naming the key as the config spells it.
func TestDurationSyntax(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		config  string
		want    time.Duration
		wantErr string
	}{
		"go duration":           {config: `{"timeout":"5m"}`, want: 5 * time.Minute},
		"seconds as a number":   {config: `{"timeout":300}`, want: 300 * time.Second},
		"seconds as a string":   {config: `{"timeout":"300"}`, want: 300 * time.Second},
		"zero":                  {config: `{"timeout":0}`, want: 0},
		"null keeps the preset": {config: `{"timeout":null}`, want: time.Hour},
		"absent keeps preset":   {config: `{}`, want: time.Hour},
		"negative number":       {config: `{"timeout":-1}`, wantErr: `key "timeout": "-1" is negative; want a duration >= 0`},
		"negative string":       {config: `{"timeout":"-1s"}`, wantErr: `key "timeout": "-1s" is negative; want a duration >= 0`},
		"fraction":              {config: `{"timeout":1.5}`, wantErr: `key "timeout": "1.5" is not a duration; want e.g. 5m, 90s, 1h30m or whole seconds such as 300`},
		"word":                  {config: `{"timeout":"soon"}`, wantErr: `key "timeout": "soon" is not a duration`},
		"boolean":               {config: `{"timeout":true}`, wantErr: `key "timeout": want a duration such as "5m" or 300 (seconds), got a boolean`},
		"pointer, set":          {config: `{"every":"2s"}`, want: time.Hour},
		"pointer, bad":          {config: `{"every":[]}`, wantErr: `key "every": want a duration such as "5m" or 300 (seconds), got a list`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := durationConfig{sharedOptions: sharedOptions{Timeout: sdk.Duration(time.Hour)}}
			err := sdk.ConfigureRequest{Name: "p", Config: []byte(tc.config)}.DecodeConfig(&c)
			if tc.wantErr != "" {
				if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want ErrInvalidConfig with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.Timeout.Std() != tc.want {
				t.Fatalf("got %v, %v; want %v", c.Timeout.Std(), err, tc.want)
			}
		})
	}
}

// TestConfigErrorNamesTheConfigKey: a wrong type in an embedded options
// struct is reported under the key the config uses, never the Go field
// path ("Options.format").
func TestConfigErrorNamesTheConfigKey(t *testing.T) {
	t.Parallel()
	var c durationConfig
	err := sdk.ConfigureRequest{Name: "p", Config: []byte(`{"format":3}`)}.DecodeConfig(&c)
	if err == nil || !strings.Contains(err.Error(), `key "format": want string, got number`) || strings.Contains(err.Error(), "sharedOptions") {
		t.Fatalf("got %v; want the key \"format\" without the Go field path", err)
	}
}

// TestParseDuration is the syntax the host's YAML and every provider
// share.
func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"5m": 5 * time.Minute, "300": 300 * time.Second, " 90s ": 90 * time.Second, "0": 0, "1h30m": 90 * time.Minute} {
		if got, err := sdk.ParseDuration(in); err != nil || got.Std() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got.Std(), err, want)
		}
	}
	for in, want := range map[string]string{"-5": "is negative", "-1m": "is negative", "": "is not a duration", "5 minutes": "is not a duration", "99999999999999999": "is too large"} {
		if _, err := sdk.ParseDuration(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDuration(%q): got %v; want %q", in, err, want)
		}
	}
}
