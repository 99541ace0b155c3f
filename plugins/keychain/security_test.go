package keychain

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// The macOS driver (securityTool) is tested here, on any OS, against
// testdata/fakesecurity: a FAKE of /usr/bin/security that keeps items in a
// file the way the real tool stores and prints them, and records its argv.
// A real Keychain exists only on macOS; the fake is the only way to run the
// command construction and parsing in CI. Each call starts a process, which
// on a loaded CI machine can take longer than the default 1s bound, so the
// configs here set a generous timeout (fakeTimeout).

// fakeTimeout bounds one call of the fake: generous, since this is not
// what the tests measure.
const fakeTimeout = `"timeout":"30s"`

var fakeSecurityBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fakesecurity")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "security")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/fakesecurity").CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

// fakeKeychain is one fake Keychain: its store, its argv record, and the
// driver pointed at it.
type fakeKeychain struct {
	t           *testing.T
	tool        securityTool
	store, argv string
}

func newFakeKeychain(t *testing.T, extraEnv ...string) *fakeKeychain {
	t.Helper()
	bin, err := fakeSecurityBin()
	if err != nil {
		t.Fatalf("build the fake security: %v", err)
	}
	dir := t.TempDir()
	k := &fakeKeychain{t: t, store: filepath.Join(dir, "items.json"), argv: filepath.Join(dir, "argv")}
	k.tool = securityTool{path: bin, env: append([]string{"FAKE_SECURITY_STORE=" + k.store, "FAKE_SECURITY_ARGV=" + k.argv}, extraEnv...)}
	return k
}

// client runs the fake as Claude Code runs security: argv, and stdin for -i.
func (k *fakeKeychain) client(stdin string, args ...string) (string, error) {
	k.t.Helper()
	cmd := k.tool.command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	return string(out), err
}

// argvHolds reports whether any recorded argument contains s.
func (k *fakeKeychain) argvHolds(s string) bool {
	data, _ := os.ReadFile(k.argv)
	return strings.Contains(string(data), s)
}

func TestSecurityConformance(t *testing.T) {
	t.Parallel()
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		p := New(WithStore(newFakeKeychain(t).tool))
		s.Configure(t, p, "keychain", `{"account":"alice",`+fakeTimeout+`}`)
		seedStore(t, p, s.Seed)
		return p
	})
}

// TestSecurityWriteIsPlainJSONTheClientParses saves through the driver and
// reads the item back the way Claude Code does (find-generic-password -w,
// then JSON.parse of the output): it must be the plain document, ASCII
// only, so security prints it as is, and no secret may have been a process
// argument.
func TestSecurityWriteIsPlainJSONTheClientParses(t *testing.T) {
	t.Parallel()
	k := newFakeKeychain(t)
	p := New(WithStore(k.tool), WithLookupEnv(env(map[string]string{"USER": "alice", "CLAUDE_CONFIG_DIR": "/Users/alice/.claude-work"})))
	sdktest.Configure(t, p, "keychain", `{`+fakeTimeout+`}`)
	cred := sdk.Credential{
		AccessToken: "sk-ant-oat01-ACCESS-SECRET", RefreshToken: "sk-ant-ort01-REFRESH-SECRET",
		ExpiresAt: time.UnixMilli(1904281689000), Scopes: []string{"user:inference"},
		Metadata: map[string]string{"subscriptionType": "max", "note": "café ☕ 𝄞"},
	}
	if err := p.Save(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	out, err := k.client("", "find-generic-password", "-a", "alice", "-w", "-s", "Claude Code-credentials-be865d75")
	if err != nil {
		t.Fatalf("the client's read: %v", err)
	}
	out = strings.TrimSpace(out)
	var doc struct {
		O struct {
			AccessToken, RefreshToken, Note string
			ExpiresAt                       int64
		} `json:"claudeAiOauth"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("the client cannot JSON.parse what credhost wrote (%v): %.40q", err, out)
	}
	if doc.O.AccessToken != cred.AccessToken || doc.O.RefreshToken != cred.RefreshToken || doc.O.ExpiresAt != 1904281689000 || doc.O.Note != "café ☕ 𝄞" {
		t.Errorf("the client read %+v", doc.O)
	}
	for _, secret := range []string{cred.AccessToken, cred.RefreshToken, hex.EncodeToString([]byte(cred.AccessToken)), hex.EncodeToString([]byte(`"` + cred.RefreshToken))} {
		if k.argvHolds(secret) {
			t.Errorf("a secret (%.12s…) was a process argument of security", secret)
		}
	}
	if !k.argvHolds(`["` + k.tool.path + `","-i"]`) {
		t.Errorf("the write did not go through security -i")
	}
}

// TestSecurityReadsWhatTheClientWrote writes items as Claude Code does (its
// `security -i` line with -X hex, and its argv fallback for large
// documents) and reads them through the provider, including a document
// security prints as hex because it holds non-ASCII text.
func TestSecurityReadsWhatTheClientWrote(t *testing.T) {
	t.Parallel()
	const doc = `{"claudeAiOauth":{"accessToken":"sk-ant-oat01-CLIENT","refreshToken":"r","expiresAt":1904281689000,"scopes":["user:inference"],"subscriptionType":"max","clientId":"c-1"},"mcpOAuth":{"naïve":{}}}`
	x := hex.EncodeToString([]byte(doc))
	for name, write := range map[string]func(k *fakeKeychain) error{
		"stdin": func(k *fakeKeychain) error {
			_, err := k.client(`add-generic-password -U -a "alice" -s "Claude Code-credentials" -X "`+x+`"`+"\n", "-i")
			return err
		},
		"argv": func(k *fakeKeychain) error {
			_, err := k.client("", "add-generic-password", "-U", "-a", "alice", "-s", "Claude Code-credentials", "-X", x)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k := newFakeKeychain(t)
			if err := write(k); err != nil {
				t.Fatalf("the client's write: %v", err)
			}
			if out, _ := k.client("", "find-generic-password", "-a", "alice", "-w", "-s", "Claude Code-credentials"); strings.TrimSpace(out) != x {
				t.Fatalf("the fake does not print non-ASCII data as hex, as security does: %.40q", out)
			}
			p := New(WithStore(k.tool), WithLookupEnv(env(map[string]string{"USER": "alice"})))
			sdktest.Configure(t, p, "keychain", `{`+fakeTimeout+`}`)
			cred, err := p.Read(context.Background())
			if err != nil || cred.AccessToken != "sk-ant-oat01-CLIENT" || cred.Metadata["clientId"] != "c-1" || cred.ExpiresAt.UnixMilli() != 1904281689000 {
				t.Fatalf("Read: %v, %v", cred, err)
			}
		})
	}
}

func TestSecurityItemNames(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env              map[string]string
		service, account string
	}{
		"defaults":                     {env: map[string]string{"USER": "alice"}, service: "Claude Code-credentials", account: "alice"},
		"config dir hashed as written": {env: map[string]string{"USER": "alice", "CLAUDE_CONFIG_DIR": "/Users/alice/.claude-work"}, service: "Claude Code-credentials-be865d75", account: "alice"},
		"config dir in NFC":            {env: map[string]string{"USER": "alice", "CLAUDE_CONFIG_DIR": "/Users/cafe\u0301"}, service: "Claude Code-credentials-bc85a8a5", account: "alice"},
		"empty config dir":             {env: map[string]string{"USER": "alice", "CLAUDE_CONFIG_DIR": ""}, service: "Claude Code-credentials", account: "alice"},
		"secure storage dir wins":      {env: map[string]string{"USER": "alice", "CLAUDE_CONFIG_DIR": "/x", "CLAUDE_SECURESTORAGE_CONFIG_DIR": "/Users/alice/.claude-work"}, service: "Claude Code-credentials-be865d75", account: "alice"},
		"empty secure storage dir":     {env: map[string]string{"USER": "alice", "CLAUDE_CONFIG_DIR": "/x", "CLAUDE_SECURESTORAGE_CONFIG_DIR": ""}, service: "Claude Code-credentials", account: "alice"},
		"custom oauth":                 {env: map[string]string{"USER": "alice", "CLAUDE_CODE_CUSTOM_OAUTH_URL": "https://x"}, service: "Claude Code-custom-oauth-credentials", account: "alice"},
		"domain user":                  {env: map[string]string{"USER": `CORP\bob`}, service: "Claude Code-credentials", account: "claude-code-user"},
		"name with a space":            {env: map[string]string{"USER": "bob smith"}, service: "Claude Code-credentials", account: "claude-code-user"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := New(WithStore(&fakeStore{}), WithLookupEnv(env(tc.env)))
			sdktest.Configure(t, p, "keychain", `{`+fakeTimeout+`}`)
			_, err := p.Read(context.Background())
			want := `service="` + tc.service + `" account="` + tc.account + `"`
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v; want the item %s", err, want)
			}
		})
	}
	if got := currentUser(env(nil)); got == "" || (got != fallbackAccount && !isPlainName(got)) {
		t.Errorf("without $USER the account is %q; want the OS user name or %q", got, fallbackAccount)
	}
}

func TestSecurityRefusesALineTooLongAndWritesNothing(t *testing.T) {
	t.Parallel()
	k := newFakeKeychain(t)
	p := New(WithStore(k.tool), WithLookupEnv(env(map[string]string{"USER": "alice"})))
	sdktest.Configure(t, p, "keychain", `{`+fakeTimeout+`}`)
	limit := maxSecret("Claude Code-credentials", "alice")
	big := sdk.Credential{AccessToken: "sk-ant-oat01-" + strings.Repeat("A", limit)}
	err := p.Save(context.Background(), big)
	if err == nil || !strings.Contains(err.Error(), "at most") || !strings.Contains(err.Error(), "nothing was written") || strings.Contains(err.Error(), "AAAA") {
		t.Fatalf("Save of a too-large document: %v; want a clear size error without the secret", err)
	}
	if k.argvHolds(`"-i"`) {
		t.Errorf("security -i ran for a document it cannot take whole")
	}
	// The driver itself refuses too, past the provider's check: a real
	// security would run a longer line cut in two.
	if err := k.tool.Set("Claude Code-credentials", "alice", strings.Repeat("B", limit+1)); err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("Set over the line limit: %v", err)
	}
	if err := k.tool.Set("Claude Code-credentials", "alice", strings.Repeat("B", limit)); err != nil {
		t.Errorf("Set at the line limit: %v", err)
	}
	// The fake, like the real tool, cannot take a longer line whole.
	if _, err := k.client(strings.Repeat("x", maxLine+1)+"\n", "-i"); err == nil {
		t.Errorf("the fake security took a %d-byte line", maxLine+1)
	}
}

func TestSecurityNotFoundAndLocked(t *testing.T) {
	t.Parallel()
	p := New(WithStore(newFakeKeychain(t).tool))
	sdktest.Configure(t, p, "keychain", `{"account":"alice",`+fakeTimeout+`}`)
	if _, err := p.Read(context.Background()); !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "no keychain item") {
		t.Errorf("empty keychain: %v; want not-found", err)
	}
	locked := New(WithStore(newFakeKeychain(t, "FAKE_SECURITY_LOCKED=1").tool))
	sdktest.Configure(t, locked, "keychain", `{"account":"alice",`+fakeTimeout+`}`)
	if _, err := locked.Read(context.Background()); !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), "unlock") {
		t.Errorf("locked keychain: %v; want not-found saying it is locked, with a hint", err)
	}
}

func TestDecodeFound(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"{\"a\":1}\n":            `{"a":1}`,
		"7b2261223a22c3a9227d\n": `{"a":"é"}`,        // hex: the data has a non-printable byte
		"deadbeef\n":             "\xde\xad\xbe\xef", // security prints these bytes so; a secret "deadbeef" prints the same (the form is ambiguous only for hex-digit secrets, never for JSON)
		"616263\n":               "616263",           // decodes to printable "abc": security would have printed abc, so this is the data itself
		"sk-ant-oat01-x\n":       "sk-ant-oat01-x",
	}
	for in, want := range tests {
		if got := decodeFound(in); got != want {
			t.Errorf("decodeFound(%q) = %q; want %q", in, got, want)
		}
	}
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
