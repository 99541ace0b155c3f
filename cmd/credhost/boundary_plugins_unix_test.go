//go:build unix

package main

import (
	"fmt"
	"github.com/credhost/credhost/host/hosttest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStdoutBeforeHandshakeIsCountedNotShown: a plugin that prints a token
// on stdout before the handshake (a debug print left in) fails to start,
// and every place that reports it says how many bytes it printed, never
// what.
func TestStdoutBeforeHandshakeIsCountedNotShown(t *testing.T) {
	t.Parallel()
	const leaked = "sk-ant-oat01-printed-by-mistake-SECRET"
	s := newSandbox(t)
	plugin := filepath.Join(s.home, "chatty-plugin")
	os.WriteFile(plugin, []byte("#!/bin/sh\necho '"+leaked+"'\nsleep 5\n"), 0o700)
	config := s.writeConfig(fmt.Sprintf("version: 1\nplugins: {start_timeout: 3s}\nproviders:\n  - {name: chatty, command: %s}\n", plugin))
	want := fmt.Sprintf("printed %d bytes on stdout", len(leaked)+1)
	for _, args := range [][]string{
		{"token"},
		{"token", "--log-level", "trace"},
		{"status"},
		{"status", "--json"},
		{"doctor"},
		{"doctor", "--json", "--log-level", "trace"},
	} {
		r := s.run(append(args, "--config", config)...)
		out := r.stdout + r.stderr
		if strings.Contains(out, "printed-by-mistake") {
			t.Errorf("credhost %s shows what the plugin printed:\n%s", strings.Join(args, " "), out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("credhost %s does not say %q:\n%s", strings.Join(args, " "), want, out)
		}
	}
}

// TestRelativeCommandIsNotTakenFromTheWorkingDirectory: credhost run in a
// project that ships ./plugin (Claude Code runs apiKeyHelper there) with a
// config naming `command: ./plugin` runs the plugin beside the config
// file, never the project's.
func TestRelativeCommandIsNotTakenFromTheWorkingDirectory(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	project := filepath.Join(s.home, "project")
	os.Mkdir(project, 0o700)
	marker := filepath.Join(s.home, "project-plugin-ran")
	os.WriteFile(filepath.Join(project, "plugin"), []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o700)
	config := s.writeConfig("version: 1\nproviders:\n  - {name: corp, command: ./plugin}\n")

	cmd := exec.Command(credhostBin, "token", "--config", config)
	cmd.Env, cmd.Dir = s.env, project
	out, err := cmd.CombinedOutput()
	if _, serr := os.Stat(marker); serr == nil {
		t.Fatalf("credhost ran ./plugin from the working directory:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), filepath.Join(s.home, "plugin")) {
		t.Errorf("exit %v; want 1, the plugin looked for beside the config (%s):\n%s", err, filepath.Join(s.home, "plugin"), out)
	}
}

// TestCredhostDumpsNoCore: the credhost process itself runs with
// RLIMIT_CORE 0 and is not dumpable. It is inspected from outside while
// `credhost exec` waits for its command. Not being dumpable shows as
// /proc/PID/environ owned by root; when the tests run as root, credhost runs as
// nobody so that the difference shows.
func TestCredhostDumpsNoCore(t *testing.T) {
	t.Parallel()
	// Not t.TempDir: its parent lets only this user in.
	dir, err := os.MkdirTemp("", "credhost-core-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	ready := filepath.Join(dir, "ready")
	cmd := exec.Command(credhostBin, "exec", "--", "sh", "-c", `: > "$1"; sleep 30`, "sh", ready)
	cmd.Env = append(newSandboxEnv(dir), "ANTHROPIC_AUTH_TOKEN="+enterpriseTk)
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	// A group of its own, so the test ends the command too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	uid := os.Getuid()
	if uid == 0 {
		// The binary's directory must let nobody in.
		if err := os.Chmod(filepath.Dir(credhostBin), 0o755); err != nil {
			t.Fatal(err)
		}
		uid = 65534
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(stderr.Name())
			t.Fatalf("credhost exec did not start its command:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pid := fmt.Sprint(cmd.Process.Pid)
	limits, err := os.ReadFile("/proc/" + pid + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Max core file size\s+0\s+0\s`).Match(limits) {
		t.Errorf("credhost (pid %s) limits:\n%s\nwant a core file size of 0 (soft and hard)", pid, limits)
	}
	fi, err := os.Stat("/proc/" + pid + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if owner := fi.Sys().(*syscall.Stat_t).Uid; owner != 0 {
		t.Errorf("/proc/%s/environ is owned by uid %d (credhost runs as %d); want root: credhost is dumpable", pid, owner, uid)
	}
}

// TestKilledCredhostLeavesNoPlugin: `credhost token` killed outright
// (SIGKILL) while a third-party plugin built with the SDK is busy in a
// Read, running a command of its own, leaves neither running.
func TestKilledCredhostLeavesNoPlugin(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	bin := filepath.Join(s.home, "cmdtoken")
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/cmdtoken").CombinedOutput(); err != nil {
		t.Fatalf("build examples/cmdtoken: %v\n%s", err, out)
	}
	pidsFile := filepath.Join(s.home, "pids")
	// The token command writes its parent's pid (the plugin) and its own
	// ($$$$ is the shell's $$ after the config's own expansion).
	script := fmt.Sprintf(`echo "$PPID $$$$" > %q.tmp; mv %q.tmp %q; exec sleep 60`, pidsFile, pidsFile, pidsFile)
	config := s.writeConfig(fmt.Sprintf("version: 1\nplugins: {call_timeout: 5m}\nproviders:\n  - name: corp\n    command: %s\n    config: {argv: [sh, -c, %q], timeout: 5m}\n", bin, script))
	cmd := exec.Command(credhostBin, "token", "--config", config)
	cmd.Env = s.env
	stderr, err := os.Create(filepath.Join(s.home, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
			out, _ := os.ReadFile(stderr.Name())
			t.Logf("the plugin never ran its command; credhost's stderr:\n%s", out)
		}
	})
	pids := hosttest.ReadPids(t, pidsFile) // plugin, child
	cmd.Process.Kill()
	cmd.Wait()
	killed = true
	hosttest.AssertGone(t, pids...)
}
