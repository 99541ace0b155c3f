package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestDoctor(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s := newSandbox(t)
		s.setenv("CREDHOST_BUILTIN=" + mode)
		path := s.writeCredentials(validCredentials(time.Now().Add(time.Hour)))

		r := s.run("doctor")
		if r.code != 0 || !strings.Contains(r.stdout, "holds a credential") || strings.Contains(r.stdout, "error") {
			t.Fatalf("healthy setup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		assertNoSecret(t, "doctor", r.stdout+r.stderr)

		os.Chmod(path, 0o644)
		os.Chmod(filepath.Dir(path), 0o755)
		r = s.run("doctor", "--json")
		var got struct {
			Config    string
			Providers []struct {
				Provider string
				Findings []struct{ Severity, Message, Fix string }
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
		}
		// The embedded default has a keychain row on macOS only.
		rows := 3
		if runtime.GOOS == "darwin" {
			rows = 4
		}
		if r.code != 1 || got.Config != "embedded default" || len(got.Providers) != rows {
			t.Fatalf("exit %d, %+v; want exit 1 and %d providers", r.code, got, rows)
		}
		fixes := fmt.Sprint(got.Providers[rows-1].Findings)
		if got.Providers[rows-1].Provider != "file" || !strings.Contains(fixes, "chmod 600 "+path) || !strings.Contains(fixes, "chmod 700 "+filepath.Dir(path)) {
			t.Errorf("file findings lack the chmod fixes: %s", fixes)
		}
		assertNoSecret(t, "doctor --json", r.stdout+r.stderr)
	})
}

func TestDoctorRefusesAMismatchedPin(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	bin := filepath.Join(s.home, "plugin")
	os.WriteFile(bin, []byte("#!/bin/sh\ntouch "+filepath.Join(s.home, "ran")+"\n"), 0o700)
	config := s.writeConfig(fmt.Sprintf("version: 1\nproviders:\n  - {name: corp, command: %s, sha256: %s}\n", bin, strings.Repeat("0", 64)))
	r := s.run("doctor", "--config", config)
	if r.code != 1 || !strings.Contains(r.stdout, "the config pins 0000") || !strings.Contains(r.stdout, "fix: if you trust this binary") {
		t.Errorf("exit %d; want 1 with the actual sha256 and a fix\n%s", r.code, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(s.home, "ran")); err == nil {
		t.Errorf("doctor ran a plugin whose pin does not match")
	}
}
