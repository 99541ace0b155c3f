//go:build linux

package keychain

import (
	"bufio"
	"context"
	"errors"
	"net"
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

// The tests here need a process of their own for the read: dbus.SessionBus
// is one connection per process, made from the real environment, so the
// read runs in a re-executed test binary whose environment names the bus
// under test. faultHelperEnv tells that binary which helper it is.
const faultHelperEnv = "CREDHOST_KEYCHAIN_FAULT_HELPER"

// requireTool skips without the named tool, or fails where the keyring
// tests are required (.ci/test, .ci/bench).
func requireTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CREDHOST_REQUIRE_SECRET_SERVICE") == "1" || os.Getenv("CREDHOST_REQUIRE_KEYRING") == "1" {
			t.Fatalf("%s is not installed", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
}

// runFaultHelper runs the helper test named helper in a re-executed test
// binary with env added, and reports its output unless it passed; the
// caller's checks go on.
func runFaultHelper(t *testing.T, helper string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.v", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), append([]string{faultHelperEnv + "=" + helper}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+helper) {
		t.Errorf("%s: %v\n%s", helper, err, out)
	}
}

func onlyAsHelper(t *testing.T, parent string) {
	if os.Getenv(faultHelperEnv) != t.Name() {
		t.Skip("runs only as the helper of " + parent)
	}
}

// TestAutolaunchAddressStartsNoBus: DBUS_SESSION_BUS_ADDRESS=autolaunch:
// asks a client to start a session bus, which godbus does by running
// dbus-launch, leaving a dbus-daemon behind. Neither the availability
// check nor the quick read may connect: both report the keyring
// unavailable, saying why, and dbus-launch never runs. The dbus-launch
// found first on the helper's PATH is a fake that only records that it
// ran (the real one would start the daemon this test must not leave).
func TestAutolaunchAddressStartsNoBus(t *testing.T) {
	t.Parallel()
	for _, call := range []string{"available", "quickGet"} {
		t.Run(call, func(t *testing.T) {
			t.Parallel()
			bin := t.TempDir()
			ran := filepath.Join(t.TempDir(), "dbus-launch-ran")
			fake := "#!/bin/sh\n: > '" + ran + "'\nexit 1\n"
			if err := os.WriteFile(filepath.Join(bin, "dbus-launch"), []byte(fake), 0o755); err != nil {
				t.Fatal(err)
			}
			runFaultHelper(t, "TestAutolaunchHelper",
				"DBUS_SESSION_BUS_ADDRESS=autolaunch:",
				"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"CREDHOST_AUTOLAUNCH_CALL="+call)
			if _, err := os.Stat(ran); err == nil {
				t.Errorf("%s ran dbus-launch", call)
			}
		})
	}
}

// TestAutolaunchHelper is the helper's side of
// TestAutolaunchAddressStartsNoBus.
func TestAutolaunchHelper(t *testing.T) {
	onlyAsHelper(t, "TestAutolaunchAddressStartsNoBus")
	var err error
	switch call := os.Getenv("CREDHOST_AUTOLAUNCH_CALL"); call {
	case "available":
		err = available(os.LookupEnv)
	case "quickGet":
		_, err = quickGet(os.LookupEnv, "credhost-probe", "a")
	default:
		t.Fatalf("unknown call %q", call)
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "autolaunch:") {
		t.Errorf("got %v; want unavailable, naming the autolaunch: address", err)
	}
}

// fakeSilentSecretService is a fake Secret Service: it owns
// org.freedesktop.secrets on a bus and never answers a call, the fault of
// a hung keyring daemon, which a real one cannot be made to show on
// demand. Every call waits until stop is closed.
type fakeSilentSecretService struct{ stop chan struct{} }

func (f fakeSilentSecretService) LookupObject(dbus.ObjectPath) (dbus.ServerObject, bool) {
	return f, true
}
func (f fakeSilentSecretService) LookupInterface(string) (dbus.Interface, bool) { return f, true }
func (f fakeSilentSecretService) LookupMethod(string) (dbus.Method, bool)       { return f, true }
func (f fakeSilentSecretService) Call(...any) ([]any, error) {
	<-f.stop
	return nil, errors.New("the fake Secret Service stopped")
}
func (fakeSilentSecretService) NumArguments() int     { return 0 }
func (fakeSilentSecretService) NumReturns() int       { return 0 }
func (fakeSilentSecretService) ArgumentValue(int) any { return nil }
func (fakeSilentSecretService) ReturnValue(int) any   { return nil }
func (fakeSilentSecretService) DecodeArguments(*dbus.Conn, string, *dbus.Message, []any) ([]any, error) {
	return nil, nil
}

// privateSessionBus starts a dbus-daemon of the test's own, with no
// Secret Service on it, and returns its address.
func privateSessionBus(t *testing.T) string {
	t.Helper()
	requireTool(t, "dbus-daemon")
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// TestSilentSecretServiceReadGivesUp: the bus never times a call out, so
// a Secret Service that owns its name and never answers would hold a read
// forever, and every read `credhost serve` repeats would add one more. The
// read must report the keyring unavailable within a generous bound (the
// deadline is 5 s) and leave no goroutine behind. The helper reads on a
// private bus where the fake above owns the Secret Service's name.
func TestSilentSecretServiceReadGivesUp(t *testing.T) {
	t.Parallel()
	addr := privateSessionBus(t)
	fake := fakeSilentSecretService{stop: make(chan struct{})}
	conn, err := dbus.Connect(addr, dbus.WithHandler(fake))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(fake.stop)
		conn.Close()
	})
	if reply, err := conn.RequestName(secretServiceName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("the fake cannot own %s: %v, %v", secretServiceName, reply, err)
	}
	runFaultHelper(t, "TestSilentSecretServiceHelper", "DBUS_SESSION_BUS_ADDRESS="+addr)
}

// TestSilentSecretServiceHelper is the helper's side of
// TestSilentSecretServiceReadGivesUp.
func TestSilentSecretServiceHelper(t *testing.T) {
	onlyAsHelper(t, "TestSilentSecretServiceReadGivesUp")
	// The read's connection's own goroutines belong to the baseline.
	if _, err := quickBus.get(context.Background(), os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()

	done := make(chan error, 1)
	go func() {
		_, err := systemStore(os.LookupEnv).Get("credhost-probe", "a")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "did not answer within 5s") {
			t.Errorf("Get: %v; want unavailable, the Secret Service did not answer within 5s", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Get still waits for the silent Secret Service after 30s")
	}

	// godbus ends a dropped call's goroutines soon after; a little slack
	// for the runtime's own.
	const slack = 2
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+slack && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+slack {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after the read, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// fakeSecretService is a fake Secret Service for the session's order of
// calls, which the real ones do not let a test choose: its one item's
// GetSecret is answered only after the session was closed (then, as a
// service that handles calls out of order must, with an error: the
// session is gone) or after a second, as a service waiting on an access
// prompt would; its login collection can be locked, and its SearchItems
// can stay silent. closed is closed when a session is.
type fakeSecretService struct {
	locked, silentSearch bool
	closed               chan struct{}
	closeOnce            sync.Once
	stop                 chan struct{}
}

const (
	fakeSessionPath = dbus.ObjectPath("/org/freedesktop/secrets/session/fake")
	fakeItemPath    = dbus.ObjectPath("/org/freedesktop/secrets/collection/login/fake")
	fakeSecret      = "the fake's secret"
)

type fakeServiceIface struct{ *fakeSecretService }

func (fakeServiceIface) OpenSession(string, dbus.Variant) (dbus.Variant, dbus.ObjectPath, *dbus.Error) {
	return dbus.MakeVariant(""), fakeSessionPath, nil
}

type fakeCollectionIface struct{ *fakeSecretService }

func (f fakeCollectionIface) SearchItems(map[string]string) ([]dbus.ObjectPath, *dbus.Error) {
	if f.silentSearch {
		<-f.stop
	}
	return []dbus.ObjectPath{fakeItemPath}, nil
}

type fakePropertiesIface struct{ *fakeSecretService }

func (f fakePropertiesIface) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	return dbus.MakeVariant(f.locked), nil
}

type fakeItemIface struct{ *fakeSecretService }

type fakeSecretValue struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

func (f fakeItemIface) GetSecret(session dbus.ObjectPath) (fakeSecretValue, *dbus.Error) {
	select {
	case <-f.closed:
		return fakeSecretValue{}, dbus.NewError("org.freedesktop.Secret.Error.NoSession", []any{"the session was closed before its secret was sent"})
	case <-time.After(time.Second):
	}
	return fakeSecretValue{Session: session, Value: []byte(fakeSecret), ContentType: "text/plain"}, nil
}

type fakeSessionIface struct{ *fakeSecretService }

func (f fakeSessionIface) Close() *dbus.Error {
	f.closeOnce.Do(func() { close(f.closed) })
	return nil
}

// serve exports the fake on a connection of its own to the bus at addr.
func (f *fakeSecretService) serve(t *testing.T, addr string) {
	t.Helper()
	f.closed, f.stop = make(chan struct{}), make(chan struct{})
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(f.stop)
		conn.Close()
	})
	for _, e := range []struct {
		v     any
		path  dbus.ObjectPath
		iface string
	}{
		{fakeServiceIface{f}, secretServicePath, secretServiceIface},
		{fakeCollectionIface{f}, loginCollectionPath, secretCollectionIface},
		{fakePropertiesIface{f}, loginCollectionPath, "org.freedesktop.DBus.Properties"},
		{fakeItemIface{f}, fakeItemPath, secretItemIface},
		{fakeSessionIface{f}, fakeSessionPath, secretSessionIface},
	} {
		if err := conn.Export(e.v, e.path, e.iface); err != nil {
			t.Fatal(err)
		}
	}
	if reply, err := conn.RequestName(secretServiceName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("the fake cannot own %s: %v, %v", secretServiceName, reply, err)
	}
}

// sessionCases are the quick read's paths after OpenSession succeeded, and
// what the read returns on each; the helper below checks the answer.
var sessionCases = map[string]struct {
	locked, silentSearch bool // the fake's
	wantSecret           string
	wantErr              error
}{
	"the secret is read":          {wantSecret: fakeSecret},
	"the collection is locked":    {locked: true, wantErr: &lockedError{path: string(loginCollectionPath)}},
	"SearchItems is not answered": {silentSearch: true, wantErr: errNoAnswer},
}

// TestSessionClosedOnlyAfterItsSecretOnEveryPath: a Secret Service may
// handle calls out of order (GetSecret waiting on an access prompt), so
// the session's Close must be sent only once GetSecret was answered, or
// the service could close the session first and fail the read; and every
// path that opened a session closes it, the deadline's included.
func TestSessionClosedOnlyAfterItsSecretOnEveryPath(t *testing.T) {
	t.Parallel()
	for name, tc := range sessionCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr := privateSessionBus(t)
			fake := &fakeSecretService{locked: tc.locked, silentSearch: tc.silentSearch}
			fake.serve(t, addr)
			runFaultHelper(t, "TestSessionHelper", "DBUS_SESSION_BUS_ADDRESS="+addr, "CREDHOST_SESSION_CASE="+name)
			select {
			case <-fake.closed:
			case <-time.After(10 * time.Second):
				t.Error("the read never closed its session")
			}
		})
	}
}

// TestSessionHelper is the helper's side of
// TestSessionClosedOnlyAfterItsSecretOnEveryPath.
func TestSessionHelper(t *testing.T) {
	onlyAsHelper(t, "TestSessionClosedOnlyAfterItsSecretOnEveryPath")
	tc, ok := sessionCases[os.Getenv("CREDHOST_SESSION_CASE")]
	if !ok {
		t.Fatalf("unknown case %q", os.Getenv("CREDHOST_SESSION_CASE"))
	}
	type result struct {
		secret string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		secret, err := quickGet(os.LookupEnv, "credhost-probe", "a")
		done <- result{secret, err}
	}()
	select {
	case r := <-done:
		if r.secret != tc.wantSecret || !sameError(r.err, tc.wantErr) {
			t.Errorf("quickGet: %q, %v; want %q, %v", r.secret, r.err, tc.wantSecret, tc.wantErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("quickGet still waits after 30s")
	}
}

// sameError reports whether got is want, or a *lockedError naming the
// same object.
func sameError(got, want error) bool {
	var g, w *lockedError
	if errors.As(want, &w) {
		return errors.As(got, &g) && *g == *w
	}
	return got == want
}

// silentBus listens on a real unix socket and accepts connections but
// never says a word: a session bus that hangs before authentication (or
// a stale socket some other program holds), which a real dbus-daemon
// cannot be made to do on demand. It returns the D-Bus address.
func silentBus(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bus")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "unix:path=" + path
}

// TestSessionBusThatNeverAnswersEndsTheRead: godbus connects to the
// session bus with no bound, holding its process-wide session-bus lock,
// so on a bus that accepts the connection and never authenticates a read
// would hang past its bound, and every later read (go-keyring's too)
// would wait for the lock. Each read must report the keyring unavailable
// within a generous bound (the connection's is 5 s), the second as the
// first, and so must the check a save makes first.
func TestSessionBusThatNeverAnswersEndsTheRead(t *testing.T) {
	t.Parallel()
	runFaultHelper(t, "TestSilentBusHelper", "DBUS_SESSION_BUS_ADDRESS="+silentBus(t))
}

// TestSilentBusHelper is the helper's side of
// TestSessionBusThatNeverAnswersEndsTheRead.
func TestSilentBusHelper(t *testing.T) {
	onlyAsHelper(t, "TestSessionBusThatNeverAnswersEndsTheRead")
	store := systemStore(os.LookupEnv)
	for _, call := range []string{"the first read", "the second read", "the check before a save"} {
		done := make(chan error, 1)
		go func() {
			if call == "the check before a save" {
				done <- available(os.LookupEnv)
				return
			}
			_, err := store.Get("credhost-probe", "a")
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "session bus did not accept a connection within 5s") {
				t.Errorf("%s: %v; want unavailable, the session bus did not accept a connection within 5s", call, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still waits for the silent session bus after 30s", call)
		}
	}
}
