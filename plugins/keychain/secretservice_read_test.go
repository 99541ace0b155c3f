//go:build linux

package keychain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	dbus "github.com/godbus/dbus/v5"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

const privateKeyringHelperEnv = "CREDHOST_KEYCHAIN_PRIVATE_KEYRING_HELPER"

// privateKeyringPassword only unlocks the throwaway keyring of
// TestSecretServiceReadInAPrivateKeyring; it must not be empty.
const privateKeyringPassword = "credhost-test"

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
	cmd := exec.Command("dbus-run-session", "--", "sh", "-c",
		`printf %s `+privateKeyringPassword+` | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$0" -test.run='^TestPrivateKeyringHelper$' -test.v`,
		os.Args[0])
	cmd.Env = append(os.Environ(), privateKeyringHelperEnv+"=1", "HOME="+home, "XDG_DATA_HOME="+home+"/.local/share")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestPrivateKeyringHelper") {
		t.Fatalf("helper in a private keyring: %v\n%s", err, out)
	}
}

// TestPrivateKeyringHelper is the helper's side; it runs only inside the
// private session above. Its subtests run in order: from "a locked
// collection is not found" on, they lock the keyring.
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

	// A locked collection is the quick read's too: it names the collection
	// to unlock, and the read asks the keyring to unlock it, which here
	// has no prompter to ask anyone, so the read is not-found, saying the
	// keyring is unavailable, and the secret never comes back.
	t.Run("a locked collection is not found", func(t *testing.T) {
		lockLogin(t)
		var locked *lockedError
		if _, err := quickGet(os.LookupEnv, service, "tester"); !errors.As(err, &locked) || locked.path != string(loginCollectionPath) {
			t.Errorf("quickGet in a locked collection: %v; want it locked, naming %s", err, loginCollectionPath)
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

	// Asking a locked keyring to unlock shows the user a prompt (here
	// gnome-keyring has no display, so its prompter fails and the prompt
	// ends dismissed, as when a user dismisses it). `credhost serve` reads
	// every 2 s: a Provider must ask once, answer the reads after at once
	// without asking again, and read the item as soon as the keyring is
	// unlocked some other way. The prompts are counted on the bus.
	t.Run("a locked keyring is asked to unlock once, not at every read", func(t *testing.T) {
		forgetUnlockAttempts(t)
		mon := monitorUnlockPrompts(t)
		lockLogin(t)
		q := New()
		sdktest.Configure(t, q, "keychain", `{"service":"`+service+`","account":"tester","timeout":"5s"}`)
		for i := range 5 {
			readLocked(t, q, fmt.Sprintf("read %d of a locked keyring", i+1))
		}
		if n := mon.prompts(t); n != 1 {
			t.Errorf("five reads of a locked keyring showed %d unlock prompts; want 1", n)
		}

		// The user unlocks it elsewhere: the next read has the item, within
		// the cooldown.
		unlockLogin(t)
		cred, err := q.Read(context.Background())
		if err != nil || cred.AccessToken != "sk-ant-oat01-private" {
			t.Fatalf("Read after the keyring was unlocked: %d-byte token, %v; want the item", len(cred.AccessToken), err)
		}

		// Locked again after it was seen unlocked: asked again, once.
		lockLogin(t)
		readLocked(t, q, "the first read after locking it again")
		readLocked(t, q, "the second read after locking it again")
		if n := mon.prompts(t); n != 2 {
			t.Errorf("a keyring locked again after a read found it unlocked: %d prompts in all; want 2", n)
		}
	})

	// The keyring is the session's: two keychain entries in one process
	// (two items) must not ask the user twice, nor any number of reads at
	// once more than once.
	t.Run("the keychain entries of one process are asked to unlock once", func(t *testing.T) {
		forgetUnlockAttempts(t)
		unlockLogin(t)
		mon := monitorUnlockPrompts(t)
		lockLogin(t)
		var entries []*Provider
		for _, account := range []string{"tester", "other"} {
			p := New()
			sdktest.Configure(t, p, "keychain", `{"service":"`+service+`","account":"`+account+`","timeout":"5s"}`)
			entries = append(entries, p)
		}
		readLocked(t, entries[0], "the first entry's read of a locked keyring")
		readLocked(t, entries[1], "the second entry's read of the locked keyring")
		if n := mon.prompts(t); n != 1 {
			t.Errorf("two keychain entries of one process read a locked keyring: %d unlock prompts; want 1", n)
		}

		// Seen unlocked, then locked again: eight reads at once, four by
		// each entry, ask once.
		unlockLogin(t)
		if cred, err := entries[0].Read(context.Background()); err != nil || cred.AccessToken != "sk-ant-oat01-private" {
			t.Fatalf("Read after the keyring was unlocked: %d-byte token, %v; want the item", len(cred.AccessToken), err)
		}
		lockLogin(t)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if cred, err := entries[i%2].Read(context.Background()); !errors.Is(err, sdk.ErrNotFound) || cred.AccessToken != "" {
					t.Errorf("concurrent read of a locked keyring: %d-byte token, %v; want not-found", len(cred.AccessToken), err)
				}
			})
		}
		wg.Wait()
		if n := mon.prompts(t); n != 2 {
			t.Errorf("eight concurrent reads of a locked keyring by two entries: %d prompts in all; want 2", n)
		}
	})

	// A save finds the keyring locked too (it was unlocked for the read
	// before it, and locked since): it asks to unlock as a read does,
	// under the same gate, and writes nothing while it stays locked.
	t.Run("a save to a locked keyring asks to unlock once, as a read does", func(t *testing.T) {
		forgetUnlockAttempts(t)
		unlockLogin(t)
		mon := monitorUnlockPrompts(t)
		lockLogin(t)
		store := systemStore(os.LookupEnv)
		for i := range 3 {
			if err := store.Set(service, "tester", "overwritten"); !errors.Is(err, ErrUnavailable) {
				t.Errorf("save %d to a locked keyring: %v; want unavailable", i+1, err)
			}
		}
		if n := mon.prompts(t); n != 1 {
			t.Errorf("three saves to a locked keyring showed %d unlock prompts; want 1", n)
		}
		unlockLogin(t)
		if secret, err := quickGet(os.LookupEnv, service, "tester"); err != nil || !strings.Contains(secret, "sk-ant-oat01-private") {
			t.Errorf("the item after saves to the locked keyring: %d bytes, %v; want it unchanged", len(secret), err)
		}
	})
}

// readLocked reads p, which must answer at once that the keyring is
// unavailable (locked), with no secret.
func readLocked(t *testing.T, p *Provider, what string) {
	t.Helper()
	cred, err := p.Read(context.Background())
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "unavailable") || cred.AccessToken != "" {
		t.Fatalf("%s: %d-byte token, %v; want not-found, unavailable", what, len(cred.AccessToken), err)
	}
	// Answered, not abandoned at the provider's timeout.
	if strings.Contains(err.Error(), "no answer within") {
		t.Errorf("%s waited for the keyring: %v", what, err)
	}
}

// forgetUnlockAttempts clears the process's unlock gate, as in a process
// that never asked the keyring to unlock: the subtests before asked.
func forgetUnlockAttempts(t *testing.T) {
	t.Helper()
	g := systemStore(os.LookupEnv).(*goKeyring).unlock
	g.mu.Lock()
	g.pending, g.failed = false, time.Time{}
	g.mu.Unlock()
}

// lockLogin locks the login collection through the Secret Service.
func lockLogin(t *testing.T) {
	t.Helper()
	conn, err := dbus.SessionBus()
	if err != nil {
		t.Fatal(err)
	}
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	if err := conn.Object(secretServiceName, secretServicePath).Call(secretServiceIface+".Lock", 0, []dbus.ObjectPath{loginCollectionPath}).Store(&locked, &prompt); err != nil || len(locked) != 1 {
		t.Fatalf("lock the login collection: %v, %v", locked, err)
	}
}

// unlockLogin unlocks the login collection with its password, as the
// desktop's login or Seahorse does: through gnome-keyring's own interface
// for it (the Secret Service API has no unlock that takes a password).
func unlockLogin(t *testing.T) {
	t.Helper()
	conn, err := dbus.SessionBus()
	if err != nil {
		t.Fatal(err)
	}
	svc := conn.Object(secretServiceName, secretServicePath)
	var ignored dbus.Variant
	var session dbus.ObjectPath
	if err := svc.Call(secretServiceIface+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&ignored, &session); err != nil {
		t.Fatalf("open a session: %v", err)
	}
	defer conn.Object(secretServiceName, session).Call(secretSessionIface+".Close", 0)
	secret := struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}{session, []byte{}, []byte(privateKeyringPassword), "text/plain"}
	if err := svc.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0, loginCollectionPath, secret).Err; err != nil {
		t.Fatalf("unlock the login collection with its password: %v", err)
	}
}

// unlockMonitor counts, on a monitoring connection of its own, the calls
// that make the Secret Service show an unlock prompt
// (org.freedesktop.Secret.Prompt.Prompt).
type unlockMonitor struct {
	mu      sync.Mutex
	n       int // Prompt calls seen
	markers int // marker pings seen
	seen    chan struct{}
}

// monitorUnlockPrompts starts counting Prompt calls on the session bus.
func monitorUnlockPrompts(t *testing.T) *unlockMonitor {
	t.Helper()
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Every message to the monitor comes here, the answer to BecomeMonitor
	// first; a monitor must never send, so none may reach the handler
	// that would answer a method call.
	in := make(chan *dbus.Message, 1024)
	conn.Eavesdrop(in)
	rules := []string{
		"type='method_call',interface='org.freedesktop.Secret.Prompt',member='Prompt'",
		markerRule,
	}
	conn.BusObject().Go("org.freedesktop.DBus.Monitoring.BecomeMonitor", 0, nil, rules, uint32(0))
	for msg := range in {
		if msg.Type == dbus.TypeError {
			t.Fatalf("BecomeMonitor: %v", msg.Body)
		}
		if msg.Type == dbus.TypeMethodReply {
			break
		}
	}
	m := &unlockMonitor{seen: make(chan struct{}, 1)}
	go func() {
		for msg := range in {
			if msg.Type != dbus.TypeMethodCall {
				continue
			}
			m.mu.Lock()
			if member, _ := msg.Headers[dbus.FieldMember].Value().(string); member == "Prompt" {
				m.n++
			} else {
				m.markers++
			}
			m.mu.Unlock()
			select {
			case m.seen <- struct{}{}:
			default:
			}
		}
	}()
	return m
}

// markerRule matches the marker prompts sends: a Ping to the bus.
const markerRule = "type='method_call',interface='org.freedesktop.DBus.Peer',member='Ping',destination='org.freedesktop.DBus'"

// prompts returns the Prompt calls seen so far. The bus hands a monitor
// one sender's messages in the order they were sent, so once the monitor
// saw the marker this sends on the reads' connection (quickBus), it saw
// every Prompt call the reads sent before it.
func (m *unlockMonitor) prompts(t *testing.T) int {
	t.Helper()
	conn, err := quickBus.get(context.Background(), os.LookupEnv) // the Prompt calls' connection
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	want := m.markers + 1
	m.mu.Unlock()
	if err := conn.BusObject().Call("org.freedesktop.DBus.Peer.Ping", 0).Err; err != nil {
		t.Fatalf("ping the bus: %v", err)
	}
	deadline := time.After(10 * time.Second)
	for {
		m.mu.Lock()
		n, markers := m.n, m.markers
		m.mu.Unlock()
		if markers >= want {
			return n
		}
		select {
		case <-m.seen:
		case <-deadline:
			t.Fatal("the monitor never saw the marker ping")
		}
	}
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
