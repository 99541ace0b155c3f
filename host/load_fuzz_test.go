package host

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig: any input either parses into a config that satisfies
// every validation rule, or fails with a *ConfigError; it never panics.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*.yaml"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(DefaultConfigYAML())
	example, _ := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	f.Add(example)
	lookup := env(map[string]string{"SET": "1", "NEG": "-1"})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, "fuzz", lookup)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
			}
			return
		}
		if cfg.Version != 1 || len(cfg.Providers) == 0 || cfg.Refresh.Buffer < 0 || cfg.Refresh.Timeout < 0 {
			t.Fatalf("accepted an invalid config: %+v", cfg)
		}
		names := map[string]bool{}
		for _, p := range cfg.Providers {
			if p.Name == "" || names[p.Name] || (p.Plugin == "") == (p.Command == "") {
				t.Fatalf("accepted an invalid provider: %+v", p)
			}
			names[p.Name] = true
			if _, err := json.Marshal(p.Config); err != nil {
				t.Fatalf("provider config cannot be sent as JSON: %v", err)
			}
		}
		for _, p := range cfg.Providers {
			for _, r := range p.RefreshWith {
				if !names[r] || r == p.Name {
					t.Fatalf("accepted refresh_with %q", r)
				}
			}
		}
	})
}
