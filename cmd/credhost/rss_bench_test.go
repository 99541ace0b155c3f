//go:build linux

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

// BenchmarkColdTokenRSS reports the peak resident memory of a cold
// `credhost token`, next to its floors measured in the same run:
//
//	spawn/true           /bin/true: the measurement's own floor (below)
//	spawn/barereader     a minimal Go program that reads the same file
//	spawn/pluginfloor    a Go program that links go-plugin and does nothing
//	credhost/in-process  `credhost token`, the embedded default chain with
//	                     the token in the file, built-ins in-process
//	credhost/4-plugins   `credhost token` over four plugin processes, three
//	                     empty env providers before the file (the walk needs
//	                     all four)
//
// peak-kB is the process's own peak, ru_maxrss, the mean over the runs.
// Each runs under testdata/maxrss, which reports its child's ru_maxrss:
// the test binary cannot, as Go starts a child with vfork and Linux counts
// the parent's memory at the child's exec in the child's ru_maxrss (every
// child of this test binary would report at least the test binary's size).
// Under maxrss that floor is the wrapper's own few MB, which spawn/true
// shows. For 4-plugins, host-peak-kB is the host's ru_maxrss and
// plugins-peak-kB the sum of each plugin's VmHWM, polled from /proc every
// millisecond until the host exits (read only once the plugin has
// exec'd: before, a vforked child's /proc shows its parent's memory):
// each is that plugin's high-water mark as last seen; the sum counts the
// binary's shared pages once per process, so it is at least the chain's
// simultaneous peak. plugins-anon-kB is the sum of each plugin's largest
// RssAnon seen (its private memory: what one more plugin costs the
// machine), and total-peak-kB host plus plugins. A run in which the poll
// did not see the four plugins fails: the sum would be short.
// Run with: go test -run '^$' -bench ColdTokenRSS -count 3 ./cmd/credhost | benchstat -
func BenchmarkColdTokenRSS(b *testing.B) {
	home := b.TempDir()
	dir := filepath.Join(home, ".claude")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	creds := filepath.Join(dir, ".credentials.json")
	if err := os.WriteFile(creds, []byte(validCredentials(time.Now().Add(time.Hour))), 0o600); err != nil {
		b.Fatal(err)
	}
	bin := b.TempDir()
	for _, name := range []string{"barereader", "pluginfloor", "maxrss"} {
		if out, err := goBuild(filepath.Join(bin, name), "./testdata/"+name).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	env := func(k string) string {
		return "  - name: env" + k + "\n    plugin: env\n    config: {var: CREDHOST_BENCH_UNSET_" + k + "}\n"
	}
	chain := filepath.Join(home, "4-plugins.yaml")
	config := "version: 1\nplugins:\n  builtin: process\nproviders:\n" + env("1") + env("2") + env("3") +
		"  - name: file\n    plugin: file\n    config: {path: " + creds + ", key: claudeAiOauth}\n"
	if err := os.WriteFile(chain, []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	sandbox := newSandboxEnv(home)
	wrap := filepath.Join(bin, "maxrss")
	// wrapped runs argv under maxrss until it exits (polling meanwhile, when
	// set) and returns its peak in kB.
	wrapped := func(b *testing.B, argv []string, env []string, poll func(wrapper int)) int64 {
		cmd := exec.Command(wrap, argv...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if poll != nil {
				poll(cmd.Process.Pid)
			}
			select {
			case err := <-done:
				lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
				kB, perr := strconv.ParseInt(strings.TrimPrefix(lines[len(lines)-1], "maxrss-kB "), 10, 64)
				if err != nil || perr != nil {
					b.Fatalf("%v: %v\n%s", argv, err, stderr.String())
				}
				return kB
			case <-tick.C:
			}
		}
	}
	cases := []struct {
		name string
		argv []string
		env  []string
	}{
		{"spawn/true", []string{"/bin/true"}, sandbox},
		{"spawn/barereader", []string{filepath.Join(bin, "barereader")}, sandbox},
		{"spawn/pluginfloor", []string{filepath.Join(bin, "pluginfloor")}, sandbox},
		{"credhost/in-process", []string{credhostBin, "token"}, append(sandbox, "CREDHOST_BUILTIN=in-process")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var sum int64
			n := 0
			for b.Loop() {
				sum += wrapped(b, c.argv, c.env, nil)
				n++
			}
			b.ReportMetric(float64(sum)/float64(n), "peak-kB")
		})
	}
	b.Run("credhost/4-plugins", func(b *testing.B) {
		var hostSum, hwmSum, anonSum int64
		n := 0
		for b.Loop() {
			hwm, anon, seen := map[int]int64{}, map[int]int64{}, map[int]string{}
			host := wrapped(b, []string{credhostBin, "--config", chain, "token"}, sandbox, func(wrapper int) {
				for _, h := range childPIDs(wrapper) {
					for _, pid := range childPIDs(h) {
						cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
						if err != nil || !strings.Contains(string(cmdline), "plugin\x00serve") {
							continue // gone, or not yet exec'd
						}
						if h, a, ok := procMemKB(pid); ok {
							hwm[pid], anon[pid] = max(hwm[pid], h), max(anon[pid], a)
							seen[pid] = strings.ReplaceAll(string(cmdline), "\x00", " ")
						}
					}
				}
			})
			if len(hwm) != 4 {
				b.Fatalf("the poll saw %d plugin processes; want 4: %v", len(hwm), seen)
			}
			hostSum += host
			for pid := range hwm {
				hwmSum += hwm[pid]
				anonSum += anon[pid]
			}
			n++
		}
		b.ReportMetric(float64(hostSum)/float64(n), "host-peak-kB")
		b.ReportMetric(float64(hwmSum)/float64(n), "plugins-peak-kB")
		b.ReportMetric(float64(anonSum)/float64(n), "plugins-anon-kB")
		b.ReportMetric(float64(hostSum+hwmSum)/float64(n), "total-peak-kB")
	})
}

// childPIDs lists the children of process pid, from each of its threads'
// /proc children lists (a Go program forks from whichever thread it runs).
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// procMemKB reads VmHWM and RssAnon of process pid, in kB; ok is false
// once the process is gone.
func procMemKB(pid int) (hwm, anon int64, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		f, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch {
		case err != nil:
		case k == "VmHWM":
			hwm, ok = f, true
		case k == "RssAnon":
			anon = f
		}
	}
	return hwm, anon, ok
}
