package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credhost/credhost/host/hosttest"
)

var (
	attackOnce sync.Once
	attackBin  string
	attackErr  error
)

// attackPlugin builds testdata/attackplugin (once per test binary) and
// copies it to dir, so each test owns its file.
func attackPlugin(t *testing.T, dir string) string {
	t.Helper()
	attackOnce.Do(func() {
		attackBin = filepath.Join(filepath.Dir(credhostBin), "attackplugin")
		out, err := exec.Command("go", "build", "-o", attackBin, "./testdata/attackplugin").CombinedOutput()
		if err != nil {
			attackErr = fmt.Errorf("build testdata/attackplugin: %v\n%s", err, out)
		}
	})
	if attackErr != nil {
		t.Fatal(attackErr)
	}
	data, err := os.ReadFile(attackBin)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "attackplugin")
	if err := os.WriteFile(path, data, 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKilledCredhostLeavesNoPluginBehindAWrapperScript: a plugin started
// through a shell script that does not exec it (so the script, not the
// plugin, is credhost's child) goes with a credhost killed outright, and
// so do the script and the command the plugin was running.
func TestKilledCredhostLeavesNoPluginBehindAWrapperScript(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	bin := attackPlugin(t, s.home)
	wrapper := filepath.Join(s.home, "wrapper")
	os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\n%q \"$@\"\n", bin)), 0o700)
	pids := filepath.Join(s.home, "pids")
	for _, sub := range [][]string{{"token"}, {"status"}, {"doctor"}, {"exec", "--", "true"}} {
		os.Remove(pids)
		config := s.writeConfig(fmt.Sprintf("version: 1\nplugins: {call_timeout: 5m}\nproviders:\n  - {name: corp, command: %s, args: [\"spawn:%s\"]}\n", wrapper, pids))
		cmd := exec.Command(credhostBin, append([]string{sub[0], "--config", config}, sub[1:]...)...)
		cmd.Env = s.env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		var plugin, child int
		for {
			if data, err := os.ReadFile(pids); err == nil {
				if _, err := fmt.Sscan(string(data), &plugin, &child); err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("credhost %s: the plugin never started its command", sub[0])
			}
			time.Sleep(20 * time.Millisecond)
		}
		script := parentOf(plugin)
		cmd.Process.Kill()
		cmd.Wait()
		deadline = time.Now().Add(2 * time.Second)
		for _, p := range []struct {
			what string
			pid  int
		}{{"wrapper script", script}, {"plugin", plugin}, {"plugin's command", child}} {
			for hosttest.Alive(p.pid) {
				if time.Now().After(deadline) {
					t.Errorf("credhost %s: the %s (pid %d) still runs 2s after credhost was killed", sub[0], p.what, p.pid)
					syscall.Kill(p.pid, syscall.SIGKILL)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// parentOf is pid's parent process ID, 0 if unknown.
func parentOf(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) STATE PPID ...: comm may hold spaces and parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// TestPluginErrorTextIsCappedAndPrintable: an error a plugin returns (here
// 100 KB with a terminal escape in it) reaches token's stderr, status,
// status --json and doctor cut to a few hundred bytes, with no control
// character that could rewrite the user's terminal.
func TestPluginErrorTextIsCappedAndPrintable(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	bin := attackPlugin(t, s.home)
	config := s.writeConfig(fmt.Sprintf("version: 1\nproviders:\n  - {name: corp, command: %s, args: [\"bigerr:100000\"]}\n", bin))
	for _, args := range [][]string{{"token"}, {"token", "--log-level", "trace"}, {"status"}, {"status", "--json"}, {"doctor"}, {"doctor", "--json"}} {
		r := s.run(append(args, "--config", config)...)
		out := r.stdout + r.stderr
		if !strings.Contains(out, "tok-secret-in-error") {
			t.Errorf("credhost %s does not show the plugin's error at all:\n%.500s", strings.Join(args, " "), out)
		}
		if strings.Count(out, "x") > 8<<10 {
			t.Errorf("credhost %s printed %d bytes of the plugin's 100 KB error; want it cut", strings.Join(args, " "), strings.Count(out, "x"))
		}
		if strings.ContainsRune(out, '\x1b') {
			t.Errorf("credhost %s passes the plugin's escape character to the terminal", strings.Join(args, " "))
		}
	}
}

// TestPluginLogLinesAreCappedAndPrintable: what a plugin logs on stderr is
// re-logged by credhost (that is what its stderr is for), but never with a
// terminal escape in it and never a 60 KB line whole.
func TestPluginLogLinesAreCappedAndPrintable(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	bin := attackPlugin(t, s.home)
	config := s.writeConfig(fmt.Sprintf("version: 1\nproviders:\n  - {name: corp, command: %s, args: [stderr]}\n", bin))
	for _, args := range [][]string{{"token"}, {"token", "--log-level", "trace"}, {"token", "--log-format", "json"}} {
		r := s.run(append(args, "--config", config)...)
		if !strings.Contains(r.stderr, "tok-secret-on-stderr json") {
			t.Errorf("credhost %s does not re-log the plugin's error line:\n%.500s", strings.Join(args, " "), r.stderr)
		}
		if strings.ContainsRune(r.stderr, '\x1b') {
			t.Errorf("credhost %s passes the plugin's escape character to the terminal", strings.Join(args, " "))
		}
		for _, c := range []string{"y", "z"} {
			if n := strings.Count(r.stderr, c); n > 8<<10 {
				t.Errorf("credhost %s re-logged %d bytes of a 30 KB field; want it cut", strings.Join(args, " "), n)
			}
		}
	}
}

// TestPluginSeesNoHostSecretUnlessNamed: a third-party plugin started by
// credhost sees none of the host's secrets or loader and shell hooks, nor a
// variable that merely starts like a locale or XDG one; what its env: names
// it does see.
func TestPluginSeesNoHostSecretUnlessNamed(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	bin := attackPlugin(t, s.home)
	envFile := filepath.Join(s.home, "plugin-env")
	s.setenv("ANTHROPIC_AUTH_TOKEN=tok-secret-1", "CLAUDE_CODE_OAUTH_TOKEN=tok-secret-2",
		"AWS_SECRET_ACCESS_KEY=tok-secret-3", "GITHUB_TOKEN=tok-secret-4", "LD_PRELOAD=", "LD_LIBRARY_PATH=/nonexistent",
		"GODEBUG=madvdontneed=1", "BASH_ENV=/nonexistent", "ENV=/nonexistent", "LC_SECRET=tok-secret-5",
		"XDG_SESSION_TOKEN=tok-secret-6", "LC_TIME=C", "XDG_CONFIG_HOME="+s.home, "AWS_PROFILE=corp")
	config := s.writeConfig(fmt.Sprintf("version: 1\nproviders:\n  - {name: corp, command: %s, args: [\"env:%s\"], env: [AWS_PROFILE]}\n", bin, envFile))
	if r := s.run("token", "--config", config); r.code != 0 {
		t.Fatalf("token: exit %d\n%s", r.code, r.stderr)
	}
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, kv := range strings.Split(string(data), "\n") {
		name, _, _ := strings.Cut(kv, "=")
		got[name] = true
	}
	for _, name := range []string{"ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN",
		"LD_PRELOAD", "LD_LIBRARY_PATH", "GODEBUG", "BASH_ENV", "ENV", "LC_SECRET", "XDG_SESSION_TOKEN"} {
		if got[name] {
			t.Errorf("the plugin sees $%s", name)
		}
	}
	for _, name := range []string{"PATH", "HOME", "LC_TIME", "XDG_CONFIG_HOME", "AWS_PROFILE"} {
		if !got[name] {
			t.Errorf("the plugin lacks $%s", name)
		}
	}
}
