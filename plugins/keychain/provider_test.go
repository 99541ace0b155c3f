package keychain

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// fakeStore is an in-memory keyring (a fake: the real Secret Service is
// tested in secretservice_test.go). block makes Get hang, like a keyring
// waiting for an unlock prompt.
type fakeStore struct {
	mu    sync.Mutex
	items map[string]string
	block chan struct{}
	sets  int
}

func (f *fakeStore) Get(service, account string) (string, error) {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.items[service+"/"+account]
	if !ok {
		return "", ErrNoItem
	}
	return v, nil
}

func (f *fakeStore) Set(service, account, secret string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.items == nil {
		f.items = map[string]string{}
	}
	f.items[service+"/"+account] = secret
	f.sets++
	return nil
}

func configured(t *testing.T, store Store, config string) *Provider {
	t.Helper()
	p := New(WithStore(store))
	sdktest.Configure(t, p, "keychain", config)
	return p
}

func TestConformanceFakeStore(t *testing.T) {
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		p := New(WithStore(&fakeStore{}))
		s.Configure(t, p, "keychain", `{"account":"alice"}`)
		seedStore(t, p, s.Seed)
		return p
	})
}

// seedStore saves seed to p, when there is one.
func seedStore(t *testing.T, p sdk.Provider, seed *sdk.Credential) {
	t.Helper()
	if seed != nil {
		if err := p.Save(context.Background(), *seed); err != nil {
			t.Fatalf("seed the store: %v", err)
		}
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	const item = "Claude Code-credentials/alice"
	tests := map[string]struct {
		config   string
		secret   *string
		want     string
		wantErr  string
		notFound bool
	}{
		"json":                {config: `{"account":"alice"}`, secret: ptr(`{"claudeAiOauth":{"accessToken":"tok-1","expiresAt":1904281689000}}`), want: "tok-1"},
		"raw":                 {config: `{"account":"alice","format":"raw"}`, secret: ptr(" tok-raw\n"), want: "tok-raw"},
		"no item":             {config: `{"account":"alice"}`, wantErr: `no keychain item service="Claude Code-credentials" account="alice"`, notFound: true},
		"json without key":    {config: `{"account":"alice"}`, secret: ptr(`{"other":{}}`), wantErr: `no "claudeAiOauth" object`, notFound: true},
		"malformed json":      {config: `{"account":"alice"}`, secret: ptr(`{"claudeAiOauth":{"accessToken":"tok-SECRET"`), wantErr: "truncated JSON"},
		"raw but json wanted": {config: `{"account":"alice"}`, secret: ptr(`sk-ant-oat01-SECRET`), wantErr: "malformed JSON"},
		"prefix":              {config: `{"account":"alice","format":"raw","token_prefix":"sk-ant-oat01-"}`, secret: ptr("tok-SECRET"), wantErr: `does not start with "sk-ant-oat01-"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			if tc.secret != nil {
				store.items = map[string]string{item: *tc.secret}
			}
			p := configured(t, store, tc.config)
			cred, err := p.Read(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "SECRET") {
					t.Fatalf("got %v; want an error containing %q and no secret", err, tc.wantErr)
				}
				if errors.Is(err, sdk.ErrNotFound) != tc.notFound {
					t.Errorf("not-found = %v; want %v", !tc.notFound, tc.notFound)
				}
				return
			}
			if err != nil || cred.AccessToken != tc.want {
				t.Fatalf("Read: %v, %v", cred, err)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestSaveKeepsOtherKeysAndChecksSize(t *testing.T) {
	t.Parallel()
	store := &fakeStore{items: map[string]string{"s/a": `{"claudeAiOauth":{"accessToken":"old","subscriptionType":"max","n":1},"mcpOAuth":{"x":1}}`}}
	p := configured(t, store, `{"service":"s","account":"a"}`)
	if err := p.Save(context.Background(), sdk.Credential{AccessToken: "new", RefreshToken: "r", ExpiresAt: time.UnixMilli(1904281689000)}); err != nil {
		t.Fatal(err)
	}
	got := store.items["s/a"]
	for _, want := range []string{`"accessToken":"new"`, `"subscriptionType":"max"`, `"n":1`, `"mcpOAuth":{"x":1}`, `"expiresAt":1904281689000`} {
		if !strings.Contains(got, want) {
			t.Errorf("saved item lacks %s: %s", want, got)
		}
	}

	store.items["s/a"] = `{"claudeAiOauth": [`
	if err := p.Save(context.Background(), sdk.Credential{AccessToken: "new"}); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("Save over a malformed item: %v; want a refusal", err)
	}
	if store.items["s/a"] != `{"claudeAiOauth": [` {
		t.Errorf("the malformed item was changed")
	}

	small := &fakeStore{}
	p = New(WithStore(small))
	p.limit = func(string, string) (int, string) { return 2560, "Windows Credential Manager takes at most 2560 bytes" }
	sdktest.Configure(t, p, "keychain", `{"service":"s","account":"a"}`)
	big := sdk.Credential{AccessToken: strings.Repeat("x", 3000)}
	err := p.Save(context.Background(), big)
	if err == nil || !strings.Contains(err.Error(), "at most 2560 bytes (nothing was written)") || small.sets != 0 {
		t.Errorf("Save over the limit: %v, %d writes; want a clear error and nothing written", err, small.sets)
	}
}

func TestHungKeyringIsNotFoundWithinTimeout(t *testing.T) {
	t.Parallel()
	store := &fakeStore{block: make(chan struct{})}
	defer close(store.block)
	p := configured(t, store, `{"account":"a","timeout":"200ms"}`)
	start := time.Now()
	_, err := p.Read(context.Background())
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Errorf("got %v; want not-found saying the keyring did not answer", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// TestNoSessionBusNeverLaunchesOne uses the real system store with no
// $DBUS_SESSION_BUS_ADDRESS: Read must say so at once, and no dbus-daemon
// may appear (godbus autolaunches one through dbus-launch when asked).
func TestNoSessionBusNeverLaunchesOne(t *testing.T) {
	t.Parallel()
	before := countProcesses(t, "dbus-daemon")
	p := New(WithLookupEnv(func(k string) (string, bool) { return "", false }))
	sdktest.Configure(t, p, "keychain", `{"account":"a"}`)
	start := time.Now()
	_, err := p.Read(context.Background())
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "no D-Bus session bus") || !strings.Contains(err.Error(), "Secret Service") {
		t.Errorf("got %v; want not-found naming the missing session bus, with a hint", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v; want well within a second", d)
	}
	if after := countProcesses(t, "dbus-daemon"); after > before {
		t.Errorf("dbus-daemon processes went from %d to %d", before, after)
	}
}

// countProcesses counts the processes named name that this test could
// have started: on Linux, those that run with this test process's HOME. A
// bus passes its environment on to what it activates, and dbus-launch
// inherits it from godbus, so what this test starts has it; other test
// runs on the machine (each .ci/test has a throwaway HOME of its own)
// start and end their dbus-daemon and gnome-keyring-daemon at any moment
// and must not count. Elsewhere every process of that name counts.
func countProcesses(t *testing.T, name string) int {
	t.Helper()
	out, err := exec.Command("pgrep", "-x", name).Output()
	if err != nil {
		return 0 // pgrep exits 1 when there are none
	}
	home := os.Getenv("HOME")
	n := 0
	for _, pid := range strings.Fields(string(out)) {
		if runtime.GOOS != "linux" || home == "" {
			n++
			continue
		}
		env, err := os.ReadFile("/proc/" + pid + "/environ")
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ESRCH):
			// Gone since pgrep saw it, or a zombie: ended.
		case err != nil || slices.Contains(strings.Split(string(env), "\x00"), "HOME="+home):
			n++ // one that cannot be told apart counts
		}
	}
	return n
}

func TestConfigure(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		`{"format":"xml"}`:   `key "format": "xml": want json or raw`,
		`{"timeout":"soon"}`: `key "timeout": "soon"`,
		`{"timeout":"-1s"}`:  `key "timeout": "-1s"`,
		`{"servce":"x"}`:     `unknown key "servce"`,
	}
	for config, want := range tests {
		err := New(WithStore(&fakeStore{})).Configure(context.Background(), sdk.ConfigureRequest{Name: "k", Config: []byte(config)})
		if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v; want %q", config, err, want)
		}
	}
	p := configured(t, &fakeStore{}, `{}`)
	info, ierr := p.Info(context.Background())
	if ierr != nil || len(info.Locks) != 1 {
		t.Fatalf("Info: %v, locks %v; want one lock", ierr, info.Locks)
	}
	_, err := p.Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), `service="Claude Code-credentials" account="`+currentUser(func(string) (string, bool) { return "", false })+`"`) ||
		!strings.Contains(info.Locks[0].Path, "/keychain-") {
		t.Errorf("defaults: %v, lock %q; want Claude Code's service and the current user", err, info.Locks[0].Path)
	}
	other := configured(t, &fakeStore{}, `{"account":"someone-else"}`)
	if oi, _ := other.Info(context.Background()); len(oi.Locks) != 1 || oi.Locks[0].Path == info.Locks[0].Path {
		t.Errorf("two accounts share a lock file")
	}
}

// TestTimeoutTakesTheHostsDurationSyntax: `timeout: 300` (whole seconds)
// configures the keychain as it does the host, and a wrong type names the
// config key, not the Go field behind it.
func TestTimeoutTakesTheHostsDurationSyntax(t *testing.T) {
	t.Parallel()
	for _, config := range []string{`{"timeout":300}`, `{"timeout":"300"}`, `{"timeout":"5m"}`} {
		if err := New(WithStore(&fakeStore{})).Configure(context.Background(), sdk.ConfigureRequest{Name: "k", Config: []byte(config)}); err != nil {
			t.Errorf("%s: %v", config, err)
		}
	}
	err := New(WithStore(&fakeStore{})).Configure(context.Background(), sdk.ConfigureRequest{Name: "k", Config: []byte(`{"format":3}`)})
	if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), `key "format": want string, got number`) {
		t.Errorf("got %v; want the key \"format\"", err)
	}
	err = New(WithStore(&fakeStore{})).Configure(context.Background(), sdk.ConfigureRequest{Name: "k", Config: []byte(`{"timeout":0}`)})
	if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), `key "timeout": "0s": want a positive duration`) {
		t.Errorf("timeout 0: got %v; want a positive duration asked for", err)
	}
}
