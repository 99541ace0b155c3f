package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExec(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env      []string
		file     bool
		args     []string // before the command
		wantVar  string
		wantTok  string
		wantCode int
		script   string
	}{
		"file token in CLAUDE_CODE_OAUTH_TOKEN": {file: true, wantVar: "CLAUDE_CODE_OAUTH_TOKEN", wantTok: fileAccess},
		"enterprise token where it came from":   {env: []string{"ANTHROPIC_AUTH_TOKEN=" + enterpriseTk}, file: true, wantVar: "ANTHROPIC_AUTH_TOKEN", wantTok: enterpriseTk},
		"--env chooses the variable":            {file: true, args: []string{"--env", "MY_TOKEN"}, wantVar: "MY_TOKEN", wantTok: fileAccess},
		"the command's exit status":             {file: true, wantVar: "CLAUDE_CODE_OAUTH_TOKEN", wantTok: fileAccess, script: "; exit 7", wantCode: 7},
		"nothing found: exit 1, no command run": {wantCode: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.setenv(tc.env...)
			s.setenv("CLAUDE_CODE_OAUTH_TOKEN=") // an empty one is replaced, not duplicated
			if tc.file {
				s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))
			}
			out := filepath.Join(s.home, "seen")
			script := `printf '%s' "$` + orDefault(tc.wantVar, "CLAUDE_CODE_OAUTH_TOKEN") + `" > "$1"; printf '%s' "$*" > "$1.args"` + tc.script
			args := append([]string{"exec"}, tc.args...)
			args = append(args, "--", "sh", "-c", script, "sh", out)
			r := s.run(args...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d; want %d\n%s", r.code, tc.wantCode, r.stderr)
			}
			seen, err := os.ReadFile(out)
			if tc.wantTok == "" {
				if err == nil {
					t.Errorf("the command ran although no credential was found")
				}
				return
			}
			if string(seen) != tc.wantTok {
				t.Errorf("$%s in the command: %d bytes; want the %s token", tc.wantVar, len(seen), name)
			}
			if argv, _ := os.ReadFile(out + ".args"); strings.Contains(string(argv), tc.wantTok) {
				t.Errorf("the token is in the command's arguments")
			}
			assertNoSecret(t, "stderr", r.stderr)
		})
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
