//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExecFDKeepsTheTokenOutOfTheEnvironment: with --fd the command reads
// the token once from descriptor 3, as Claude Code does (it opens
// /proc/self/fd/N and reads to the end), and its environment holds no
// token: CLAUDE_CODE_OAUTH_TOKEN is removed, the descriptor's variable set.
func TestExecFDKeepsTheTokenOutOfTheEnvironment(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
	s.setenv("CLAUDE_CODE_OAUTH_TOKEN=", "CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR=9")
	dir := s.home
	script := `cat "/proc/self/fd/$CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR" > "$1/first"
cat "/proc/self/fd/$CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR" > "$1/second"
env > "$1/env"
tr '\0' '\n' < /proc/$$/environ > "$1/environ"`
	r := s.run("exec", "--fd", "--", "sh", "-c", script, "sh", dir)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	read := func(name string) string { data, _ := os.ReadFile(filepath.Join(dir, name)); return string(data) }
	if got := read("first"); got != fileAccess {
		t.Errorf("descriptor 3 held %d bytes; want the token", len(got))
	}
	if got := read("second"); got != "" {
		t.Errorf("descriptor 3 could be read twice (%d bytes the second time)", len(got))
	}
	for _, name := range []string{"env", "environ"} {
		env := read(name)
		if strings.Contains(env, fileAccess) {
			t.Errorf("the token is in the command's %s", name)
		}
		if !strings.Contains(env, "\nCLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR=3\n") || strings.Contains(env, "CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR=9") {
			t.Errorf("the command's %s lacks CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR=3 (alone):\n%s", name, env)
		}
		if strings.Contains(env, "\nCLAUDE_CODE_OAUTH_TOKEN=") {
			t.Errorf("the command's %s still sets CLAUDE_CODE_OAUTH_TOKEN, which the client prefers to the descriptor", name)
		}
	}
	assertNoSecret(t, "stderr", r.stderr)
}

// TestExecFDWithAnotherVariableIsAUsageError: the descriptor is Claude
// Code's form of CLAUDE_CODE_OAUTH_TOKEN alone.
func TestExecFDWithAnotherVariableIsAUsageError(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
	r := s.run("exec", "--fd", "--env", "MY_TOKEN", "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, "--env MY_TOKEN") {
		t.Errorf("exit %d; want 2 and a message naming --env MY_TOKEN\n%s", r.code, r.stderr)
	}
}
