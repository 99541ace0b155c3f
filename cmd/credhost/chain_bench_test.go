package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkColdProcessChain times a cold `credhost token` whose providers
// are all plugin processes, next to its floor in the same run:
//
//	plugins/1        one provider (the file holding the token): one
//	                 plugin's start, the floor
//	plugins/4-last   four providers, three empty env ones before the file:
//	                 the walk needs all four plugins
//	plugins/4-first  the file first, then three env providers: the walk
//	                 needs the first; those started ahead are ended
//	plugins/16-last  fifteen empty env providers before the file: more
//	                 plugins than the parallel start window, so they start
//	                 in waves; (16-last - 1) / 15 is each one's marginal cost
//	plugins/16-first the file first, then fifteen env providers
//
// Started one after another, four plugins cost about four starts; started
// together, about one (the target is 1.5×).
// Run with: go test -run '^$' -bench ColdProcessChain -count 6 ./cmd/credhost | benchstat -
func BenchmarkColdProcessChain(b *testing.B) {
	home := b.TempDir()
	creds := filepath.Join(home, ".credentials.json")
	if err := os.WriteFile(creds, []byte(validCredentials(time.Now().Add(time.Hour))), 0o600); err != nil {
		b.Fatal(err)
	}
	file := "  - name: file\n    plugin: file\n    config: {path: " + creds + ", key: claudeAiOauth}\n"
	env := func(i string) string {
		return "  - name: env" + i + "\n    plugin: env\n    config: {var: CREDHOST_BENCH_UNSET_" + i + "}\n"
	}
	envs := func(n int) string {
		var s strings.Builder
		for i := range n {
			s.WriteString(env(strconv.Itoa(i + 1)))
		}
		return s.String()
	}
	head := "version: 1\nplugins:\n  builtin: process\nproviders:\n"
	chains := []struct{ name, providers string }{
		{"plugins/1", file},
		{"plugins/4-last", env("1") + env("2") + env("3") + file},
		{"plugins/4-first", file + env("1") + env("2") + env("3")},
		{"plugins/16-last", envs(15) + file},
		{"plugins/16-first", file + envs(15)},
	}
	for _, c := range chains {
		config := filepath.Join(home, strings.ReplaceAll(c.name, "/", "-")+".yaml")
		if err := os.WriteFile(config, []byte(head+c.providers), 0o600); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(credhostBin, "--config", config, "token")
				cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", c.name, err, out)
				}
			}
		})
	}
}
