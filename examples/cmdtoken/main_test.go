package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(func() sdk.Provider { return &provider{} })
	os.Exit(m.Run())
}

// configFor makes a config whose command prints seed's token (from a file,
// so the token is in no process's arguments), or prints nothing.
func configFor(t *testing.T, seed *sdk.Credential) string {
	argv := []string{"true"}
	if seed != nil {
		path := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(path, []byte(seed.AccessToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		argv = []string{"cat", path}
	}
	b, _ := json.Marshal(map[string]any{"argv": argv})
	return string(b)
}

// The conformance suite across the real plugin boundary, as a third-party
// plugin author would run it.
func TestConformance(t *testing.T) {
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		return s.Configure(t, sdktest.Process(t), "cmdtoken", configFor(t, s.Seed))
	})
}
