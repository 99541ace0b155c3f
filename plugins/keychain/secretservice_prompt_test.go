//go:build linux

package keychain

import (
	"errors"
	"os"
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
	addr := ownSessionBus(t)

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
	addr := ownSessionBus(t)
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

// TestGoKeyringPromptWaitsOneAtATime: go-keyring, when it finds its
// collection locked after all (here a fake Secret Service that does not
// tell whether its collection is locked, as a keyring locked between
// credhost's check and go-keyring's call does not), shows its own prompt
// and waits for it with no bound, on godbus's shared connection. A serve
// left on such a keyring must not grow by one waiting read per cooldown:
// while one go-keyring call waits, later reads, a cooldown apart and
// more, answer unavailable within a bound, make no other Unlock call,
// and at most one read waits in go-keyring's prompt.
func TestGoKeyringPromptWaitsOneAtATime(t *testing.T) {
	t.Parallel()
	runFaultHelper(t, "TestGoKeyringOneAtATimeHelper")
}

// TestGoKeyringOneAtATimeHelper is the helper's side of
// TestGoKeyringPromptWaitsOneAtATime.
func TestGoKeyringOneAtATimeHelper(t *testing.T) {
	onlyAsHelper(t, "TestGoKeyringPromptWaitsOneAtATime")
	addr := ownSessionBus(t)
	fake := &fakePromptingSecretService{} // no OpenSession: go-keyring reads
	fake.serve(t, addr)
	s := systemStore(os.LookupEnv).(*goKeyring)
	var mu sync.Mutex
	clock := time.Now()
	s.unlock.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	go s.Get("credhost-probe", "a")
	fake.waitPrompted(t)
	const later = 2
	for i := range later {
		mu.Lock()
		clock = clock.Add(unlockCooldown)
		mu.Unlock()
		read := make(chan error, 1)
		go func() { _, err := s.Get("credhost-probe", "a"); read <- err }()
		select {
		case err := <-read:
			t.Logf("read %d a cooldown later: %v", i+2, err)
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("read %d behind go-keyring's open prompt: %v; want unavailable", i+2, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("read %d, a cooldown after the last, still waits after 20 s", i+2)
		}
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	waiting := strings.Count(stacks, "secret_service.(*SecretService).handlePrompt")
	t.Logf("unlock calls %d; reads waiting in go-keyring's prompt: %d", fake.unlockCalls(), waiting)
	if waiting > 1 {
		t.Errorf("%d reads wait in go-keyring's unbounded prompt after %d cooldowns; want at most 1", waiting, later)
	}
	if n := fake.unlockCalls(); n != 1 {
		t.Errorf("%d Unlock calls while go-keyring's first prompt was open; want 1", n)
	}
	exitBeforeCleanup(t)
}

// TestUnlockPromptWaitEndedWithoutAnswerDismissesIt: when the wait for
// an unlock prompt ends without its Completed signal while credhost is
// still connected (here: the Secret Service gives up its name, so its
// prompt is taken for gone), credhost dismisses the prompt, so no dialog
// stays on screen that nobody waits for; a prompt that completed is not
// dismissed.
func TestUnlockPromptWaitEndedWithoutAnswerDismissesIt(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"completed", "service-left"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			runFaultHelper(t, "TestPromptDismissedHelper", "CREDHOST_PROMPT_END="+end)
		})
	}
}

// TestPromptDismissedHelper is the helper's side of
// TestUnlockPromptWaitEndedWithoutAnswerDismissesIt.
func TestPromptDismissedHelper(t *testing.T) {
	onlyAsHelper(t, "TestUnlockPromptWaitEndedWithoutAnswerDismissesIt")
	addr := ownSessionBus(t)
	fake := &fakePromptingSecretService{quickRead: true}
	fake.serve(t, addr)
	s := systemStore(os.LookupEnv).(*goKeyring)
	read := make(chan error, 1)
	go func() { _, err := s.Get("credhost-probe", "a"); read <- err }()
	fake.waitPrompted(t)
	want := 0
	if os.Getenv("CREDHOST_PROMPT_END") == "completed" {
		if err := fake.conn.Emit(fakePromptPath, secretPromptIface+".Completed", true, dbus.MakeVariant([]dbus.ObjectPath{})); err != nil {
			t.Fatal(err)
		}
	} else {
		want = 1
		if _, err := fake.conn.ReleaseName(secretServiceName); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-read:
		t.Logf("read: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the read still waits 10 s after its prompt ended")
	}
	deadline := time.Now().Add(5 * time.Second)
	for fake.dismissCalls() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a Dismiss that should not come
	if n := fake.dismissCalls(); n != want {
		t.Errorf("the prompt whose wait ended by %s was dismissed %d times; want %d", os.Getenv("CREDHOST_PROMPT_END"), n, want)
	}
	exitBeforeCleanup(t)
}

// TestUnlockPromptLeavesNoMatchRules: each way the wait for a prompt ends
// (the prompt's Completed, dismissed or not; its Secret Service leaving)
// removes both match rules from credhost's connection, counted by the bus
// itself (dbus-daemon's statistics interface).
func TestUnlockPromptLeavesNoMatchRules(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"dismissed", "completed", "service-left"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			runFaultHelper(t, "TestMatchRulesHelper", "CREDHOST_PROMPT_END="+end)
		})
	}
}

// TestMatchRulesHelper is the helper's side of
// TestUnlockPromptLeavesNoMatchRules.
func TestMatchRulesHelper(t *testing.T) {
	onlyAsHelper(t, "TestUnlockPromptLeavesNoMatchRules")
	addr := ownSessionBus(t)
	fake := &fakePromptingSecretService{quickRead: true}
	fake.serve(t, addr)
	s := systemStore(os.LookupEnv).(*goKeyring)
	read := make(chan error, 1)
	go func() { _, err := s.Get("credhost-probe", "a"); read <- err }()
	fake.waitPrompted(t)
	quickBus.mu.Lock()
	ours := quickBus.conn.Names()[0]
	quickBus.mu.Unlock()
	rules := func() uint32 {
		var stats map[string]dbus.Variant
		if err := fake.conn.BusObject().Call("org.freedesktop.DBus.Debug.Stats.GetConnectionStats", 0, ours).Store(&stats); err != nil {
			t.Skipf("the bus keeps no statistics: %v", err)
		}
		n, _ := stats["MatchRules"].Value().(uint32)
		return n
	}
	during := rules()
	switch os.Getenv("CREDHOST_PROMPT_END") {
	case "dismissed", "completed":
		dismissed := os.Getenv("CREDHOST_PROMPT_END") == "dismissed"
		if err := fake.conn.Emit(fakePromptPath, secretPromptIface+".Completed", dismissed, dbus.MakeVariant([]dbus.ObjectPath{})); err != nil {
			t.Fatal(err)
		}
	case "service-left":
		if _, err := fake.conn.ReleaseName(secretServiceName); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-read:
		t.Logf("read: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the read still waits 10 s after its prompt ended")
	}
	time.Sleep(500 * time.Millisecond)
	after := rules()
	t.Logf("match rules on credhost's connection: %d during the prompt, %d after", during, after)
	if during != 2 || after != 0 {
		t.Errorf("match rules: %d during the prompt, %d after; want 2 and 0", during, after)
	}
	exitBeforeCleanup(t)
}

// TestConcurrentReadsOfALockedKeyringAskOnce: reads of a locked keyring
// started together (several entries, a serve and a doctor check) make
// one unlock prompt between them; the others answer at once, unavailable,
// without a secret.
func TestConcurrentReadsOfALockedKeyringAskOnce(t *testing.T) {
	t.Parallel()
	runFaultHelper(t, "TestConcurrentLockedHelper")
}

// TestConcurrentLockedHelper is the helper's side of
// TestConcurrentReadsOfALockedKeyringAskOnce.
func TestConcurrentLockedHelper(t *testing.T) {
	onlyAsHelper(t, "TestConcurrentReadsOfALockedKeyringAskOnce")
	addr := ownSessionBus(t)
	fake := &fakePromptingSecretService{quickRead: true}
	fake.serve(t, addr)
	const readers = 16
	answered := make(chan error, readers)
	for i := range readers {
		s := systemStore(os.LookupEnv) // one store per entry, one gate per bus
		go func() {
			secret, err := s.Get("credhost-probe", string(rune('a'+i)))
			if secret != "" {
				t.Errorf("a read held back returned a %d-byte secret", len(secret))
			}
			answered <- err
		}()
	}
	for range readers - 1 {
		select {
		case err := <-answered:
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("a read held back: %v; want unavailable", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a read held back by the pending prompt did not answer in 20 s")
		}
	}
	// The fifteen held back have answered; the one that asks may still be
	// on its way to Unlock (it asks who owns the service first).
	n := fake.unlockCalls()
	for deadline := time.Now().Add(10 * time.Second); n == 0 && time.Now().Before(deadline); n = fake.unlockCalls() {
		time.Sleep(10 * time.Millisecond)
	}
	if n != 1 {
		t.Errorf("%d concurrent reads asked to unlock %d times; want 1", readers, n)
	}
	exitBeforeCleanup(t)
}
