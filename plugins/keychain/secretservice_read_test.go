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

	dbus "github.com/godbus/dbus/v5"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

const privateKeyringHelperEnv = "CREDHOST_KEYCHAIN_PRIVATE_KEYRING_HELPER"

// TestSecretServiceReadInAPrivateKeyring runs the helper below in a D-Bus
// session and gnome-keyring of its own (a throwaway HOME), because it
// counts the keyring's sessions and locks its login collection, which
// would disturb the other tests sharing .ci/test's keyring.
func TestSecretServiceReadInAPrivateKeyring(t *testing.T) {
	skip := t.Skipf
	if os.Getenv("CREDHOST_REQUIRE_SECRET_SERVICE") == "1" {
		skip = t.Fatalf
	}
	for _, tool := range []string{"dbus-run-session", "gnome-keyring-daemon", "secret-tool"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s is not installed", tool)
		}
	}
	home := t.TempDir()
	if err := os.MkdirAll(home+"/.local/share/keyrings", 0o700); err != nil {
		t.Fatal(err)
	}
	// The password only unlocks this throwaway keyring; it must not be empty.
	cmd := exec.Command("dbus-run-session", "--", "sh", "-c",
		`printf %s credhost-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$0" -test.run='^TestPrivateKeyringHelper$' -test.v`,
		os.Args[0])
	cmd.Env = append(os.Environ(), privateKeyringHelperEnv+"=1", "HOME="+home, "XDG_DATA_HOME="+home+"/.local/share")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestPrivateKeyringHelper") {
		t.Fatalf("helper in a private keyring: %v\n%s", err, out)
	}
}

// TestPrivateKeyringHelper is the helper's side; it runs only inside the
// private session above. Its subtests run in order: the last locks the
// keyring.
func TestPrivateKeyringHelper(t *testing.T) {
	if os.Getenv(privateKeyringHelperEnv) != "1" {
		t.Skip("runs only as the helper of TestSecretServiceReadInAPrivateKeyring")
	}
	service := uniqueService(t)
	store := exec.Command("secret-tool", "store", "--label=Claude Code", "service", service, "username", "tester")
	store.Stdin = strings.NewReader(`{"claudeAiOauth":{"accessToken":"sk-ant-oat01-private","expiresAt":1904281689000}}`)
	if out, err := store.CombinedOutput(); err != nil {
		t.Fatalf("secret-tool store: %v\n%s", err, out)
	}
	p := New()
	sdktest.Configure(t, p, "keychain", `{"service":"`+service+`","account":"tester","timeout":"5s"}`)

	// A daemon reads the keychain again and again over one connection: each
	// read must close the Secret Service session it opened.
	t.Run("every read closes its session", func(t *testing.T) {
		before := openSessions(t)
		for range 5 {
			cred, err := p.Read(context.Background())
			if err != nil || cred.AccessToken != "sk-ant-oat01-private" {
				t.Fatalf("Read: %v, %v", cred, err)
			}
		}
		// Close is sent without waiting for its answer, so the Secret
		// Service may still hold the last read's session for a moment; a
		// leak holds one per read and never lets go.
		after := openSessions(t)
		for deadline := time.Now().Add(5 * time.Second); after > before && time.Now().Before(deadline); after = openSessions(t) {
			time.Sleep(20 * time.Millisecond)
		}
		if after > before {
			t.Errorf("the Secret Service holds %d sessions five seconds after five reads, %d before", after, before)
		}
	})

	// The plain case (an unlocked login collection) is quickGet's, not
	// go-keyring's; the locked one below is go-keyring's.
	t.Run("an unlocked item is read the quick way", func(t *testing.T) {
		secret, err := quickGet(os.LookupEnv, service, "tester")
		if err != nil || !strings.Contains(secret, "sk-ant-oat01-private") {
			t.Fatalf("quickGet: %d bytes, %v; want the item", len(secret), err)
		}
		if _, err := quickGet(os.LookupEnv, service+"-none", "tester"); err != ErrNoItem {
			t.Errorf("quickGet of no item: %v; want ErrNoItem", err)
		}
	})

	t.Run("no item is not found", func(t *testing.T) {
		q := New()
		sdktest.Configure(t, q, "keychain", `{"service":"`+service+`-none","account":"tester","timeout":"5s"}`)
		if _, err := q.Read(context.Background()); !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "no keychain item") {
			t.Errorf("Read: %v; want not-found naming the missing item", err)
		}
	})

	// A locked collection is go-keyring's case: it asks the keyring to
	// unlock, which here has no prompter to ask anyone, so the read is
	// not-found, saying the keyring is unavailable, and the secret never
	// comes back.
	t.Run("a locked collection is not found", func(t *testing.T) {
		conn, err := dbus.SessionBus()
		if err != nil {
			t.Fatal(err)
		}
		var locked []dbus.ObjectPath
		var prompt dbus.ObjectPath
		if err := conn.Object(secretServiceName, secretServicePath).Call(secretServiceIface+".Lock", 0, []dbus.ObjectPath{loginCollectionPath}).Store(&locked, &prompt); err != nil || len(locked) != 1 {
			t.Fatalf("lock the login collection: %v, %v", locked, err)
		}
		if _, err := quickGet(os.LookupEnv, service, "tester"); err != errTakeLongPath {
			t.Errorf("quickGet in a locked collection: %v; want go-keyring's turn", err)
		}
		start := time.Now()
		cred, err := p.Read(context.Background())
		if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "unavailable") || cred.AccessToken != "" {
			t.Errorf("Read of a locked keyring: %d-byte token, %v; want not-found, unavailable", len(cred.AccessToken), err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("took %v", d)
		}
	})
}

// openSessions is the number of sessions the Secret Service holds open.
func openSessions(t *testing.T) int {
	t.Helper()
	conn, err := dbus.SessionBus()
	if err != nil {
		t.Fatal(err)
	}
	var xml string
	if err := conn.Object(secretServiceName, secretServicePath+"/session").Call("org.freedesktop.DBus.Introspectable.Introspect", 0).Store(&xml); err != nil {
		t.Fatal(err)
	}
	return strings.Count(xml, "<node name=")
}
