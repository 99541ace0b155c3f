//go:build linux

package keychain

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

const activationHelperEnv = "CREDHOST_KEYCHAIN_ACTIVATION_HELPER"

// TestSessionBusWithoutSecretServiceStartsNothing runs a helper in a fresh
// private D-Bus session where no Secret Service runs (gnome-keyring is
// installed, so the bus could activate it): Read must be not-found, and no
// gnome-keyring-daemon may start.
func TestSessionBusWithoutSecretServiceStartsNothing(t *testing.T) {
	if _, err := exec.LookPath("dbus-run-session"); err != nil {
		if os.Getenv("CREDHOST_REQUIRE_SECRET_SERVICE") == "1" {
			t.Fatal("dbus-run-session is not installed")
		}
		t.Skip("dbus-run-session is not installed")
	}
	cmd := exec.Command("dbus-run-session", "--", os.Args[0], "-test.run=^TestActivationHelper$", "-test.v")
	cmd.Env = append(os.Environ(), activationHelperEnv+"=1", "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestActivationHelper") {
		t.Fatalf("helper in a private session: %v\n%s", err, out)
	}
}

// TestActivationHelper is the helper's side; it runs only inside the
// private session above.
func TestActivationHelper(t *testing.T) {
	if os.Getenv(activationHelperEnv) != "1" {
		t.Skip("runs only as the helper of TestSessionBusWithoutSecretServiceStartsNothing")
	}
	before := countProcesses(t, "gnome-keyring-d")
	p := New()
	sdktest.Configure(t, p, "keychain", `{"account":"a"}`)
	start := time.Now()
	_, err := p.Read(context.Background())
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "no Secret Service is running on the session bus") {
		t.Errorf("Read: %v; want not-found saying no Secret Service runs", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
	// The quick read learns it from the bus's answer to a call sent with
	// NoAutoStart, without go-keyring's longer path.
	if _, err := quickGet(os.LookupEnv, "credhost-probe", "a"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no Secret Service is running") {
		t.Errorf("quickGet: %v; want unavailable, no Secret Service running", err)
	}
	time.Sleep(200 * time.Millisecond) // an activation would have started by now
	if after := countProcesses(t, "gnome-keyring-d"); after > before {
		t.Errorf("gnome-keyring-daemon processes went from %d to %d: the bus activated one", before, after)
	}
}
