package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestKeychainRefreshThroughSecretService runs the real binary against the
// real Secret Service that .ci/test starts (skipped without one, unless
// CREDHOST_REQUIRE_SECRET_SERVICE=1): an expiring token stored by
// secret-tool is refreshed, saved back to the keychain with the other keys
// kept, under the keychain's cross-process lock.
func TestKeychainRefreshThroughSecretService(t *testing.T) {
	t.Parallel()
	skip := t.Skipf
	if os.Getenv("CREDHOST_REQUIRE_SECRET_SERVICE") == "1" {
		skip = t.Fatalf
	}
	bus := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if _, err := exec.LookPath("secret-tool"); err != nil || bus == "" {
		skip("needs a Secret Service session and secret-tool; run through .ci/test")
	}
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		s.setenv("DBUS_SESSION_BUS_ADDRESS=" + bus)
		b := make([]byte, 6)
		rand.Read(b)
		service := "credhost-cli-test-" + hex.EncodeToString(b)
		access, refresh := srv.Issue()
		store := exec.Command("secret-tool", "store", "--label=test", "service", service, "username", "tester")
		store.Stdin = strings.NewReader(fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,"subscriptionType":"max"},"mcpOAuth":{}}`,
			access, refresh, time.Now().Add(time.Minute).UnixMilli()))
		if out, err := store.CombinedOutput(); err != nil {
			t.Fatalf("secret-tool store: %v\n%s", err, out)
		}
		config := s.writeConfig(fmt.Sprintf(`version: 1
oauth: {token_url: %q, body: json}
plugins: {builtin: %s}
providers:
  - {name: kc, plugin: keychain, config: {service: %q, account: tester, timeout: 5s}}
`, srv.TokenURL(), mode, service))
		r := s.run("token", "--config", config, "--log-level", "trace")
		if r.code != 0 || r.stdout == access+"\n" {
			t.Fatalf("token: exit %d, old token %v\n%s", r.code, r.stdout == access+"\n", r.stderr)
		}
		out, err := exec.Command("secret-tool", "lookup", "service", service, "username", "tester").Output()
		if err != nil {
			t.Fatal(err)
		}
		item := string(out)
		if !strings.Contains(item, strings.TrimSpace(r.stdout)) || strings.Contains(item, refresh) || !strings.Contains(item, `"subscriptionType":"max"`) || !strings.Contains(item, `"mcpOAuth":{}`) {
			t.Errorf("keychain item after refresh does not hold the new tokens and the other keys")
		}
		if srv.Requests() != 1 {
			t.Errorf("%d token requests; want 1", srv.Requests())
		}
		if strings.Contains(r.stderr, access) || strings.Contains(r.stderr, refresh) || strings.Contains(r.stderr, strings.TrimSpace(r.stdout)) {
			t.Errorf("trace log holds a token")
		}
	})
}
