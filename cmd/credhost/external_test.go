package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExternalPluginPinnedByChecksum runs a third-party plugin built with
// sdk/ only (examples/cmdtoken) through `command:`, pinned by its sha256;
// a wrong pin must keep it from running.
func TestExternalPluginPinnedByChecksum(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "cmdtoken")
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/cmdtoken").CombinedOutput(); err != nil {
		t.Fatalf("build examples/cmdtoken: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	s := newSandbox(t)
	tokenFile := filepath.Join(s.home, "corp-token")
	os.WriteFile(tokenFile, []byte("corp-token-SECRET\n"), 0o600)
	config := func(pin string) string {
		return s.writeConfig(fmt.Sprintf(`version: 1
providers:
  - name: corp
    command: %s
    sha256: %s
    config: {argv: [cat, %q], expires_in: 1h}
`, bin, pin, tokenFile))
	}

	r := s.run("token", "--config", config(hex.EncodeToString(sum[:])), "--log-level", "trace")
	if r.code != 0 || r.stdout != "corp-token-SECRET\n" {
		t.Fatalf("token through the pinned plugin: exit %d\n%s", r.code, r.stderr)
	}
	assertNoSecret(t, "stderr", r.stderr)

	sum[0] ^= 0xff
	r = s.run("token", "--config", config(hex.EncodeToString(sum[:])))
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "checksum does not match the sha256 pinned in the config") {
		t.Errorf("wrong pin: exit %d; want 1 and a checksum error\n%s", r.code, r.stderr)
	}
}
