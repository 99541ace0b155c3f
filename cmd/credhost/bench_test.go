package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkColdToken times whole processes, each figure next to its floors
// measured in the same run:
//
//	spawn/true                  a bare process spawn (/bin/true)
//	spawn/barereader            a minimal Go program that reads the same file
//	spawn/pluginfloor           a Go program that links go-plugin and does nothing
//	spawn/pluginfloor-gobuild   the same, built by a plain `go build`
//	spawn/metricsfloor          pluginfloor plus the daemon's metrics encoder (expfmt)
//	credhost/in-process         `credhost token`, built-ins in-process (the default)
//	credhost/in-process-gobuild the same, built by a plain `go build`
//	credhost/process            `credhost token`, every built-in a plugin process
//
// Every Go program is built as the README builds credhost (goBuild: static,
// without gRPC's request tracing), except the two -gobuild ones: a plain
// `go build` (dynamically linked, gRPC tracing in), the floor and figure as
// they were before credhost chose its build flags. credhost/in-process over
// spawn/pluginfloor is credhost's share next to the go-plugin floor;
// spawn/pluginfloor over spawn/pluginfloor-gobuild is what the flags take
// off the floor itself.
//
// The chain is the embedded default with the token in the file, so credhost
// walks enterprise and oauth-env (both empty; on macOS the keychain too)
// before the file.
// Run with: go test -run '^$' -bench ColdToken -count 10 ./cmd/credhost | benchstat -
func BenchmarkColdToken(b *testing.B) {
	env, bin := coldTokenSetup(b)
	cases := []struct {
		name string
		argv []string
		env  []string
	}{
		{"spawn/true", []string{"/bin/true"}, nil},
		{"spawn/barereader", []string{filepath.Join(bin, "barereader")}, nil},
		{"spawn/pluginfloor", []string{filepath.Join(bin, "pluginfloor")}, nil},
		{"spawn/pluginfloor-gobuild", []string{filepath.Join(bin, "pluginfloor-gobuild")}, nil},
		{"spawn/metricsfloor", []string{filepath.Join(bin, "metricsfloor")}, nil},
		{"credhost/in-process", []string{credhostBin, "token"}, []string{"CREDHOST_BUILTIN=in-process"}},
		{"credhost/in-process-gobuild", []string{filepath.Join(bin, "credhost-gobuild"), "token"}, []string{"CREDHOST_BUILTIN=in-process"}},
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

// coldTokenSetup makes a HOME with a fresh token in Claude Code's
// credentials file, and builds the floors and a plain-`go build` credhost
// into bin (see BenchmarkColdToken); env is the environment every run gets.
func coldTokenSetup(b *testing.B) (env []string, bin string) {
	b.Helper()
	home := b.TempDir()
	dir := filepath.Join(home, ".claude")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".credentials.json"), []byte(validCredentials(time.Now().Add(time.Hour))), 0o600); err != nil {
		b.Fatal(err)
	}
	bin = b.TempDir()
	builds := []*exec.Cmd{
		exec.Command("go", "build", "-o", filepath.Join(bin, "pluginfloor-gobuild"), "./testdata/pluginfloor"),
		exec.Command("go", "build", "-o", filepath.Join(bin, "credhost-gobuild"), "."),
	}
	for _, name := range []string{"barereader", "pluginfloor", "metricsfloor"} {
		builds = append(builds, goBuild(filepath.Join(bin, name), "./testdata/"+name))
	}
	for _, build := range builds {
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", build, err, out)
		}
	}
	env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "DBUS_SESSION_BUS_ADDRESS="}
	return env, bin
}

// BenchmarkColdTokenShare is credhost's share of a cold start next to the
// go-plugin floor, with load on a shared machine falling on both alike:
// every iteration runs one cold `credhost token` (default chain, built-ins
// in-process, token in the file) and one pluginfloor, in turn, the order
// flipped each time. It reports the median wall time of each (credhost-ms,
// floor-ms) and their ratio (share-x):
//
//	build     both built as the README builds credhost (goBuild)
//	gobuild   both built by a plain `go build`
//
// Run with: go test -run '^$' -bench ColdTokenShare -benchtime 100x -count 6 ./cmd/credhost | benchstat -
func BenchmarkColdTokenShare(b *testing.B) {
	env, bin := coldTokenSetup(b)
	env = append(env, "CREDHOST_BUILTIN=in-process")
	for _, c := range []struct{ name, credhost, floor string }{
		{"build", credhostBin, filepath.Join(bin, "pluginfloor")},
		{"gobuild", filepath.Join(bin, "credhost-gobuild"), filepath.Join(bin, "pluginfloor-gobuild")},
	} {
		b.Run(c.name, func(b *testing.B) {
			var figure, floor []float64
			run := func(argv ...string) float64 {
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Env = env
				start := time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", argv[0], err, out)
				}
				return float64(time.Since(start).Microseconds()) / 1000
			}
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 {
					figure = append(figure, run(c.credhost, "token"))
					floor = append(floor, run(c.floor))
				} else {
					floor = append(floor, run(c.floor))
					figure = append(figure, run(c.credhost, "token"))
				}
			}
			f, fl := median(figure), median(floor)
			b.ReportMetric(f, "credhost-ms")
			b.ReportMetric(fl, "floor-ms")
			b.ReportMetric(f/fl, "share-x")
		})
	}
}

// median is the middle of xs (the mean of the two middle ones when even).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
