package host

import (
	"strings"
	"testing"
)

// A plugin says its own name and version; what status and doctor show of
// them is one printable line of bounded length, whatever it sent.
func TestInfoTextIsPrintableAndCapped(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ in, want string }{
		"plain":          {"corp-sts", "corp-sts"},
		"version":        {"v1.2.3+build.7", "v1.2.3+build.7"},
		"newline":        {"1\nWARN fake log line", "1?WARN fake log line"},
		"escape":         {"1\x1b[31mred", "1?[31mred"},
		"unicode kept":   {"prüfer 1", "prüfer 1"},
		"long is capped": {strings.Repeat("x", 100), strings.Repeat("x", maxInfoText) + "…"},
		"empty":          {"", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := infoText(tc.in); got != tc.want {
				t.Errorf("infoText(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

// Summary shows the chain without a value of any provider's config block:
// those may be secrets, written literally or through ${VAR}.
func TestConfigSummaryHoldsNoConfigValue(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(`version: 1
providers:
  - {name: e, plugin: env, config: {var: TOK}, refresh_with: [f]}
  - {name: f, plugin: file, config: {path: /x/creds.json, secret: literal-SECRET, other: "${S}"}}
`), "t.yaml", env(map[string]string{"S": "sk-ant-oat01-env-SECRET"}))
	if err != nil {
		t.Fatal(err)
	}
	sum := cfg.Summary()
	if len(sum) != 2 || sum[0].Name != "e" || sum[1].Name != "f" || strings.Join(sum[0].RefreshWith, ",") != "f" {
		t.Fatalf("Summary() = %+v", sum)
	}
	if got := strings.Join(sum[1].ConfigKeys, ","); got != "other,path,secret" {
		t.Errorf("config keys %q; want other,path,secret", got)
	}
	if s := strings.ToLower(strings.Join([]string{sum[0].Plugin, sum[1].Plugin, sum[1].Command}, " ")); strings.Contains(s, "secret") {
		t.Errorf("summary holds a value: %+v", sum)
	}
}
