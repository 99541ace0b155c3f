//go:build linux

package keychain

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

// TestFailedLongPathReadHoldsBackNoUnlockPrompt: a read that goes through
// go-keyring (the quick read could not handle the case) and fails for a
// reason that has nothing to do with a lock (here: the Secret Service
// cannot open a session) never asked anyone to unlock anything. It must
// not put the unlock gate into its cooldown: the next read of a locked
// keyring must still be allowed to ask the user, and the failed read's
// neighbours must not be told that an unlock prompt was dismissed.
func TestFailedLongPathReadHoldsBackNoUnlockPrompt(t *testing.T) {
	t.Parallel()
	runFaultHelper(t, "TestFailedLongPathHelper")
}

// TestFailedLongPathHelper is the helper's side of
// TestFailedLongPathReadHoldsBackNoUnlockPrompt.
func TestFailedLongPathHelper(t *testing.T) {
	onlyAsHelper(t, "TestFailedLongPathReadHoldsBackNoUnlockPrompt")
	addr := "unix:path=" + filepath.Join(t.TempDir(), "bus")
	startBus(t, strings.TrimPrefix(addr, "unix:path="))
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)

	// A Secret Service whose OpenSession fails: the quick read hands over
	// to go-keyring, which fails too, without any prompt.
	brokenConn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := brokenConn.Export(fakeFailingService{}, secretServicePath, secretServiceIface); err != nil {
		t.Fatal(err)
	}
	if reply, err := brokenConn.RequestName(secretServiceName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("the fake cannot own %s: %v, %v", secretServiceName, reply, err)
	}
	s := systemStore(os.LookupEnv).(*goKeyring)
	_, err = s.Get("credhost-probe", "a")
	t.Logf("long-path read: %v", err)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("long-path read: %v; want unavailable", err)
	}
	_, err = s.Get("credhost-probe", "a")
	t.Logf("second long-path read: %v", err)
	if err != nil && strings.Contains(err.Error(), "did not unlock when credhost last asked") {
		t.Errorf("second read says a prompt was dismissed, but none was ever shown: %v", err)
	}

	// The Secret Service is replaced by one whose keyring is locked: the
	// user has never been asked, so the read must ask now.
	brokenConn.Close()
	locked := &fakePromptingSecretService{quickRead: true}
	locked.serve(t, addr)
	read := make(chan error, 1)
	go func() { _, err := s.Get("credhost-probe", "a"); read <- err }()
	select {
	case <-locked.prompted:
	case err := <-read:
		t.Errorf("the read of the locked keyring was held back without any prompt ever shown: %v", err)
	case <-time.After(10 * time.Second):
		t.Error("the read of the locked keyring neither prompted nor answered in 10 s")
	}
	exitBeforeCleanup(t)
}

// fakeFailingService is a fake Secret Service that fails every Unlock
// at once, with no prompt, and has no OpenSession (the quick read hands
// over to go-keyring): a service in a state the tests cannot put a real
// one in (say, between its start and its first collection).
type fakeFailingService struct{}

func (fakeFailingService) Unlock([]dbus.ObjectPath) ([]dbus.ObjectPath, dbus.ObjectPath, *dbus.Error) {
	return nil, "/", dbus.NewError("org.freedesktop.DBus.Error.Failed", []any{"no collection yet"})
}

// TestCompletedOfAnotherPromptOrSenderEndsNoWait: while a read waits for
// its unlock prompt, a Completed signal for another prompt object must
// not end the wait (the path filter), and neither may one whose sender is
// not the Secret Service: any program on the session bus can send a
// signal addressed to credhost's connection, which the bus delivers
// whatever the match rules say.
func TestCompletedOfAnotherPromptOrSenderEndsNoWait(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"other-path", "other-sender"} {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			runFaultHelper(t, "TestForeignCompletedHelper", "CREDHOST_FOREIGN="+c)
		})
	}
}

// TestForeignCompletedHelper is the helper's side of
// TestCompletedOfAnotherPromptOrSenderEndsNoWait.
func TestForeignCompletedHelper(t *testing.T) {
	onlyAsHelper(t, "TestCompletedOfAnotherPromptOrSenderEndsNoWait")
	addr := "unix:path=" + filepath.Join(t.TempDir(), "bus")
	startBus(t, strings.TrimPrefix(addr, "unix:path="))
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	fake := &fakePromptingSecretService{quickRead: true}
	fake.serve(t, addr)
	s := systemStore(os.LookupEnv).(*goKeyring)
	read := make(chan error, 1)
	go func() { _, err := s.Get("credhost-probe", "a"); read <- err }()
	fake.waitPrompted(t)

	quickBus.mu.Lock()
	ours := quickBus.conn.Names()[0]
	quickBus.mu.Unlock()
	sender, path := fake.conn, fakePromptPath // the Secret Service, another prompt
	if os.Getenv("CREDHOST_FOREIGN") == "other-path" {
		path = "/org/freedesktop/secrets/prompt/someone-elses"
	} else {
		intruder, err := dbus.Connect(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer intruder.Close()
		sender = intruder
	}
	msg := &dbus.Message{
		Type: dbus.TypeSignal,
		Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldPath:        dbus.MakeVariant(path),
			dbus.FieldInterface:   dbus.MakeVariant(secretPromptIface),
			dbus.FieldMember:      dbus.MakeVariant("Completed"),
			dbus.FieldDestination: dbus.MakeVariant(ours),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(false, dbus.MakeVariant(""))),
		},
		Body: []any{false, dbus.MakeVariant([]dbus.ObjectPath{})},
	}
	msg.Headers[dbus.FieldSignature] = dbus.MakeVariant(dbus.SignatureOf(msg.Body...))
	if call := sender.Send(msg, nil); call != nil && call.Err != nil {
		t.Fatal(call.Err)
	}
	select {
	case err := <-read:
		t.Errorf("a Completed from %s on %s ended the read's wait for its own prompt: %v", sender.Names()[0], path, err)
	case <-time.After(3 * time.Second):
	}
	if n := fake.unlockCalls(); n != 1 {
		t.Logf("unlock calls: %d", n)
	}
	exitBeforeCleanup(t)
}

// TestGoKeyringUnlockPromptsDoNotPileUp: when the quick read hands over
// to go-keyring (any case it does not handle) and the keyring is locked,
// go-keyring shows the prompt and waits for it with no bound, on godbus's
// shared connection. The package says the wait for a prompt is bounded
// and a serve left on a locked keyring does not grow: after three
// cooldowns of a prompt nobody answers, at most one read may still be
// waiting in go-keyring's prompt.
func TestGoKeyringUnlockPromptsDoNotPileUp(t *testing.T) {
	t.Parallel()
	runFaultHelper(t, "TestGoKeyringPilesHelper")
}

// TestGoKeyringPilesHelper is the helper's side of
// TestGoKeyringUnlockPromptsDoNotPileUp.
func TestGoKeyringPilesHelper(t *testing.T) {
	onlyAsHelper(t, "TestGoKeyringUnlockPromptsDoNotPileUp")
	addr := "unix:path=" + filepath.Join(t.TempDir(), "bus")
	startBus(t, strings.TrimPrefix(addr, "unix:path="))
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	fake := &fakePromptingSecretService{} // no OpenSession: go-keyring reads
	fake.serve(t, addr)
	s := systemStore(os.LookupEnv).(*goKeyring)
	var mu sync.Mutex
	clock := time.Now()
	s.unlock.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	for range 3 {
		go s.Get("credhost-probe", "a")
		fake.waitPrompted(t)
		mu.Lock()
		clock = clock.Add(unlockCooldown)
		mu.Unlock()
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	waiting := strings.Count(stacks, "secret_service.(*SecretService).handlePrompt")
	t.Logf("unlock calls %d; reads waiting in go-keyring's prompt: %d", fake.unlockCalls(), waiting)
	if waiting > 1 {
		t.Errorf("%d reads still wait in go-keyring's unbounded prompt after %d cooldowns; want at most 1", waiting, 3)
	}
	exitBeforeCleanup(t)
}
