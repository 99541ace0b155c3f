package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkColdToken times whole processes, each figure next to its floors
// measured in the same run:
//
//	spawn/true          a bare process spawn (/bin/true)
//	spawn/barereader    a minimal Go program that reads the same file
//	spawn/pluginfloor   a Go program that links go-plugin and does nothing
//	spawn/metricsfloor  the same plus the daemon's metrics encoder (expfmt)
//	credhost/in-process `credhost token`, built-ins in-process (the default)
//	credhost/process    `credhost token`, every built-in a plugin process
//
// The chain is the embedded default with the token in the file, so credhost
// walks enterprise, oauth-env and keychain (all empty) before the file.
// Run with: go test -run '^$' -bench ColdToken -count 10 ./cmd/credhost | benchstat -
func BenchmarkColdToken(b *testing.B) {
	home := b.TempDir()
	dir := filepath.Join(home, ".claude")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".credentials.json"), []byte(validCredentials(time.Now().Add(time.Hour))), 0o600); err != nil {
		b.Fatal(err)
	}
	bin := b.TempDir()
	for _, name := range []string{"barereader", "pluginfloor", "metricsfloor"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, name), "./testdata/"+name).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "DBUS_SESSION_BUS_ADDRESS="}
	cases := []struct {
		name string
		argv []string
		env  []string
	}{
		{"spawn/true", []string{"/bin/true"}, nil},
		{"spawn/barereader", []string{filepath.Join(bin, "barereader")}, nil},
		{"spawn/pluginfloor", []string{filepath.Join(bin, "pluginfloor")}, nil},
		{"spawn/metricsfloor", []string{filepath.Join(bin, "metricsfloor")}, nil},
		{"credhost/in-process", []string{credhostBin, "token"}, []string{"CREDHOST_BUILTIN=in-process"}},
		{"credhost/process", []string{credhostBin, "token"}, []string{"CREDHOST_BUILTIN=process"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(c.argv[0], c.argv[1:]...)
				cmd.Env = append(append([]string{}, env...), c.env...)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", c.name, err, out)
				}
			}
		})
	}
}
