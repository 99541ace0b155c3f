//go:build linux

package keychain

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

// fakePromptingSecretService is a fake Secret Service whose unlock prompt
// never completes: the user leaves the dialog open, and the service or
// the bus goes away with it open, which a real gnome-keyring without a
// display cannot be made to do (its prompts fail at once). Its login
// collection is locked; with quickRead it answers the quick read's calls
// (so the read unlocks on credhost's own connection), without them the
// read is go-keyring's. Unlock calls are counted; prompted gets a value
// at each Prompt call; Dismiss calls are counted.
type fakePromptingSecretService struct {
	quickRead  bool
	mu         sync.Mutex
	unlocks    int
	dismissals int
	prompted   chan struct{}
	conn       *dbus.Conn
}

const fakePromptPath = dbus.ObjectPath("/org/freedesktop/secrets/prompt/fake")

type fakePromptingServiceIface struct{ *fakePromptingSecretService }

func (f fakePromptingServiceIface) Unlock([]dbus.ObjectPath) ([]dbus.ObjectPath, dbus.ObjectPath, *dbus.Error) {
	f.mu.Lock()
	f.unlocks++
	f.mu.Unlock()
	return []dbus.ObjectPath{}, fakePromptPath, nil
}

func (fakePromptingServiceIface) OpenSession(string, dbus.Variant) (dbus.Variant, dbus.ObjectPath, *dbus.Error) {
	return dbus.MakeVariant(""), fakeSessionPath, nil
}

type fakePromptIface struct{ *fakePromptingSecretService }

// Prompt shows the "dialog" and never sends Completed.
func (f fakePromptIface) Prompt(string) *dbus.Error {
	select {
	case f.prompted <- struct{}{}:
	default:
	}
	return nil
}

// Dismiss takes the "dialog" away.
func (f fakePromptIface) Dismiss() *dbus.Error {
	f.mu.Lock()
	f.dismissals++
	f.mu.Unlock()
	return nil
}

func (f *fakePromptingSecretService) dismissCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dismissals
}

func (f *fakePromptingSecretService) unlockCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unlocks
}

// serve exports the fake on a connection of its own to the bus at addr
// and makes it the Secret Service.
func (f *fakePromptingSecretService) serve(t *testing.T, addr string) {
	t.Helper()
	f.prompted = make(chan struct{}, 1)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	f.conn = conn
	t.Cleanup(func() { conn.Close() })
	exports := []fakeExport{
		{fakePromptIface{f}, fakePromptPath, secretPromptIface},
	}
	if f.quickRead {
		locked := &fakeSecretService{locked: true}
		exports = append(exports,
			fakeExport{fakePromptingServiceIface{f}, secretServicePath, secretServiceIface},
			fakeExport{fakeCollectionIface{locked}, loginCollectionPath, secretCollectionIface},
			fakeExport{fakePropertiesIface{locked}, loginCollectionPath, "org.freedesktop.DBus.Properties"},
		)
	} else {
		// Unlock only: OpenSession fails, so the read is go-keyring's.
		exports = append(exports, fakeExport{fakeUnlockOnlyIface{f}, secretServicePath, secretServiceIface})
	}
	for _, e := range exports {
		if err := conn.Export(e.v, e.path, e.iface); err != nil {
			t.Fatal(err)
		}
	}
	if reply, err := conn.RequestName(secretServiceName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("the fake cannot own %s: %v, %v", secretServiceName, reply, err)
	}
}

// fakeExport is one object a fake exports.
type fakeExport struct {
	v     any
	path  dbus.ObjectPath
	iface string
}

// fakeUnlockOnlyIface is the fake's Secret Service with Unlock only.
type fakeUnlockOnlyIface struct{ *fakePromptingSecretService }

func (f fakeUnlockOnlyIface) Unlock(paths []dbus.ObjectPath) ([]dbus.ObjectPath, dbus.ObjectPath, *dbus.Error) {
	return fakePromptingServiceIface(f).Unlock(paths)
}

// waitPrompted waits until the fake was asked to show its prompt, and a
// moment more, so the read waits for the prompt's outcome.
func (f *fakePromptingSecretService) waitPrompted(t *testing.T) {
	t.Helper()
	select {
	case <-f.prompted:
	case <-time.After(20 * time.Second):
		t.Fatal("the read never showed the unlock prompt")
	}
	time.Sleep(time.Second)
}

// ownSessionBus starts a dbus-daemon of the test's own and makes it
// this process's session bus (DBUS_SESSION_BUS_ADDRESS), for the helpers
// that run in a process of their own; it returns the bus's address.
func ownSessionBus(t *testing.T) string {
	t.Helper()
	addr := "unix:path=" + filepath.Join(t.TempDir(), "bus")
	startBus(t, strings.TrimPrefix(addr, "unix:path="))
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	return addr
}

// startBus starts a dbus-daemon listening on a fixed unix socket path, so
// it can be stopped and started again at the same address, and returns it.
func startBus(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	requireTool(t, "dbus-daemon")
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--address=unix:path="+path, "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return cmd
}

// TestUnlockPromptLostWithItsSecretServiceIsAskedAgain: the unlock gate
// lets no prompt through while one is pending. When the Secret Service
// goes away with its prompt open (gnome-keyring restarted or crashed),
// the prompt's outcome never comes: the read waiting for it must end
// then, unavailable, and once the cooldown has passed the restarted
// Secret Service, locked, must be asked to unlock again, not held back
// for the life of the process by a prompt that no longer exists.
func TestUnlockPromptLostWithItsSecretServiceIsAskedAgain(t *testing.T) {
	t.Parallel()
	runFaultHelper(t, "TestLostPromptHelper")
}

// TestLostPromptHelper is the helper's side of
// TestUnlockPromptLostWithItsSecretServiceIsAskedAgain.
func TestLostPromptHelper(t *testing.T) {
	onlyAsHelper(t, "TestUnlockPromptLostWithItsSecretServiceIsAskedAgain")
	addr := ownSessionBus(t)

	first := &fakePromptingSecretService{quickRead: true}
	first.serve(t, addr)
	s := systemStore(os.LookupEnv).(*goKeyring)
	var mu sync.Mutex
	clock := time.Now()
	s.unlock.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	firstRead := make(chan error, 1)
	go func() { _, err := s.Get("credhost-probe", "a"); firstRead <- err }()
	first.waitPrompted(t)
	first.conn.Close() // the Secret Service goes away with its prompt open
	select {
	case err := <-firstRead:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("the read whose prompt was lost: %v; want unavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the read whose prompt was lost still waits 10 s after its Secret Service went away")
	}

	second := &fakePromptingSecretService{quickRead: true} // restarted, locked
	second.serve(t, addr)
	mu.Lock()
	clock = clock.Add(unlockCooldown)
	mu.Unlock()
	go s.Get("credhost-probe", "a")
	select {
	case <-second.prompted:
	case <-time.After(10 * time.Second):
	}
	if n := second.unlockCalls(); n != 1 {
		t.Errorf("the restarted Secret Service was asked to unlock %d times a cooldown later; want 1", n)
	}
	exitBeforeCleanup(t)
}

// TestSessionBusLostDuringAnUnlockPromptEndsTheRead: when the session bus
// goes away (restarts, exits) while a read waits for an unlock prompt,
// the read must end, unavailable, and not take the process with it: the
// keychain provider runs inside `credhost serve`, and go-keyring, waiting
// for the prompt on godbus's shared connection, dereferences the nil
// signal it reads from the channel the closing connection closes. Both
// reads that prompt are checked: credhost's own (the quick read found the
// keyring locked) and go-keyring's (any other case).
func TestSessionBusLostDuringAnUnlockPromptEndsTheRead(t *testing.T) {
	t.Parallel()
	for _, prompter := range []string{"credhost", "go-keyring"} {
		t.Run(prompter, func(t *testing.T) {
			t.Parallel()
			runFaultHelper(t, "TestBusLostHelper", "CREDHOST_PROMPTER="+prompter)
		})
	}
}

// TestBusLostHelper is the helper's side of
// TestSessionBusLostDuringAnUnlockPromptEndsTheRead.
func TestBusLostHelper(t *testing.T) {
	onlyAsHelper(t, "TestSessionBusLostDuringAnUnlockPromptEndsTheRead")
	path := filepath.Join(t.TempDir(), "bus")
	bus := startBus(t, path)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+path)
	fake := &fakePromptingSecretService{quickRead: os.Getenv("CREDHOST_PROMPTER") == "credhost"}
	fake.serve(t, "unix:path="+path)
	s := systemStore(os.LookupEnv)
	done := make(chan error, 1)
	go func() {
		secret, err := s.Get("credhost-probe", "a")
		if secret != "" {
			err = fmt.Errorf("a %d-byte secret and %v", len(secret), err)
		}
		done <- err
	}()
	fake.waitPrompted(t)
	bus.Process.Kill() // the session bus goes away with the prompt open
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("read after the bus went away: %v; want unavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the read still waits 10 s after the bus went away")
	}
}

// TestDismissedUnlockPromptsLeaveNoGoroutines: a locked keyring nobody
// unlocks (a headless session, a user away) is asked to unlock every
// five minutes for as long as `credhost serve` runs. go-keyring's unlock
// leaves a signal channel registered on godbus's shared connection at
// every prompt, and godbus then parks a goroutine per full channel per
// later signal: goroutines grew with the square of the prompts (171 after
// 20). After 20 dismissed prompts, of reads and saves in turn, the
// goroutines must have grown by a small constant at most. Real gnome-keyring, in a private D-Bus session:
// without a display its prompts fail, ending dismissed, as a user's
// dismissal does; the prompts are counted on the bus, so the test cannot
// pass without them.
func TestDismissedUnlockPromptsLeaveNoGoroutines(t *testing.T) {
	t.Parallel()
	runInPrivateKeyring(t, "TestDismissedPromptsHelper")
}

// TestDismissedPromptsHelper is the helper's side of
// TestDismissedUnlockPromptsLeaveNoGoroutines.
func TestDismissedPromptsHelper(t *testing.T) {
	onlyAsHelper(t, "TestDismissedUnlockPromptsLeaveNoGoroutines")
	mon := monitorUnlockPrompts(t)
	lockLogin(t)
	s := systemStore(os.LookupEnv).(*goKeyring)
	var mu sync.Mutex
	clock := time.Now()
	s.unlock.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	const prompts = 20 // 100 minutes of a serve on a locked keyring
	var counts []int
	for i := range prompts {
		// Reads and saves in turn: both ask to unlock.
		var err error
		what := "read"
		if i%2 == 0 {
			_, err = s.Get("credhost-probe", "a")
		} else {
			what = "save"
			err = s.Set("credhost-probe", "a", "never written")
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s %d: %v; want unavailable (locked)", what, i, err)
		}
		time.Sleep(100 * time.Millisecond) // let godbus deliver the signals
		counts = append(counts, runtime.NumGoroutine())
		mu.Lock()
		clock = clock.Add(unlockCooldown)
		mu.Unlock()
	}
	if n := mon.prompts(t); n != prompts {
		t.Fatalf("%d reads and saves a cooldown apart showed %d unlock prompts; want %d", prompts, n, prompts)
	}
	t.Logf("goroutines after each prompt: %v", counts)
	const slack = 5
	if grew := counts[prompts-1] - counts[0]; grew > slack {
		t.Errorf("%d goroutines more after %d dismissed prompts than after the first (%v); want at most %d", grew, prompts, counts, slack)
	}
}

// TestReadsReconnectAfterTheSessionBusRestarts: after the session bus
// restarts at the same address, the next reads and checks reconnect:
// quickBus and the shared connection both notice the drop.
func TestReadsReconnectAfterTheSessionBusRestarts(t *testing.T) {
	t.Parallel()
	runFaultHelper(t, "TestReconnectHelper")
}

// TestReconnectHelper is the helper's side of
// TestReadsReconnectAfterTheSessionBusRestarts.
func TestReconnectHelper(t *testing.T) {
	onlyAsHelper(t, "TestReadsReconnectAfterTheSessionBusRestarts")
	path := filepath.Join(t.TempDir(), "bus")
	addr := "unix:path=" + path
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	for i := range 3 {
		bus := startBus(t, path)
		(&fakeSecretService{}).serve(t, addr)
		if secret, err := quickGet(os.LookupEnv, "credhost-probe", "a"); secret != fakeSecret || err != nil {
			t.Errorf("bus %d: quickGet %q, %v; want the fake's secret", i, secret, err)
		}
		if err := available(os.LookupEnv); err != nil {
			t.Errorf("bus %d: available: %v", i, err)
		}
		bus.Process.Kill()
		bus.Wait()
		os.Remove(path)
	}
}

// runInPrivateKeyring runs the helper test named helper in a D-Bus session
// and gnome-keyring of its own (a throwaway HOME), with the login
// collection unlocked, and reports its output unless it passed.
func runInPrivateKeyring(t *testing.T, helper string) {
	t.Helper()
	for _, tool := range []string{"dbus-run-session", "gnome-keyring-daemon"} {
		requireTool(t, tool)
	}
	home := t.TempDir()
	if err := os.MkdirAll(home+"/.local/share/keyrings", 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-run-session", "--", "sh", "-c",
		`printf %s `+privateKeyringPassword+` | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$0" -test.run='^`+helper+`$' -test.v -test.timeout=2m`,
		os.Args[0])
	cmd.Env = append(os.Environ(), faultHelperEnv+"="+helper, "HOME="+home, "XDG_DATA_HOME="+home+"/.local/share")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+helper) {
		t.Errorf("%s: %v\n%s", helper, err, out)
	}
}

// exitBeforeCleanup ends the helper process with its verdict before its
// cleanups stop the bus and the fake: a read still waiting for a prompt
// the test left open has nothing more to show.
func exitBeforeCleanup(t *testing.T) {
	if t.Failed() {
		os.Exit(1)
	}
	fmt.Println("--- PASS: " + t.Name())
	os.Exit(0)
}
