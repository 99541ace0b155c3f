package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/credhost/credhost/host"
)

// BenchmarkServeStaleness measures what noticing a store changed behind
// credhost serve costs, to choose how (the issue's "watch the file or check
// it cheaply per request"), each next to the others in the same run:
//
//	memory/...    Host.Token with the token cached: what a request costs
//	              when the chain is re-read in the background instead
//	stat/...      one os.Stat of the credentials file: the cheapest check
//	              per request, and it covers the file store alone
//	reread/...    Host.Reread: one walk of the whole chain (env, keychain
//	              where the platform has it, file), what the background
//	              re-read does every --staleness, and what a per-request
//	              re-read would cost every request
//
// each with the built-ins in-process and as plugin processes. The chain is
// the embedded default with the token in the file.
// Run with: go test -run '^$' -bench ServeStaleness -count 10 ./cmd/credhost | benchstat -
func BenchmarkServeStaleness(b *testing.B) {
	home := b.TempDir()
	dir := filepath.Join(home, ".claude")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, ".credentials.json")
	if err := os.WriteFile(file, []byte(validCredentials(time.Now().Add(time.Hour))), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("HOME", home)
	b.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	b.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	b.Setenv("ANTHROPIC_AUTH_TOKEN", "")
	b.Setenv("CLAUDE_CODE_OAUTH_TOKEN", "")
	b.Setenv("CREDHOST_CONFIG", "")
	ctx := context.Background()
	for _, mode := range modes {
		b.Run("mode="+mode, func(b *testing.B) {
			b.Setenv("CREDHOST_BUILTIN", mode)
			cfg, err := host.LoadConfig(host.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			bi, err := builtins()
			if err != nil {
				b.Fatal(err)
			}
			// A plugin process is `credhost plugin serve NAME` of the
			// binary the tests built, not of the test binary.
			for name, bt := range bi {
				bt.Command = func() *exec.Cmd { return exec.Command(credhostBin, "plugin", "serve", name) }
				bi[name] = bt
			}
			h, err := host.New(cfg, host.WithBuiltins(bi))
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			if _, err := h.Token(ctx); err != nil {
				b.Fatal(err)
			}
			b.Run("how=memory", func(b *testing.B) {
				for b.Loop() {
					if _, err := h.Token(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("how=stat", func(b *testing.B) {
				for b.Loop() {
					if _, err := os.Stat(file); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("how=reread", func(b *testing.B) {
				for b.Loop() {
					if _, err := h.Reread(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
