package file_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credhost/credhost/plugins/file"
	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(func() sdk.Provider { return file.New() })
	os.Exit(m.Run())
}

// seedFile writes a credentials file holding seed, or nothing.
func seedFile(t *testing.T, seed *sdk.Credential) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".credentials.json")
	if seed == nil {
		return path
	}
	p := configured(t, path)
	if err := p.Save(context.Background(), *seed); err != nil {
		t.Fatal(err)
	}
	return path
}

func configured(t *testing.T, path string) *file.Provider {
	t.Helper()
	p := file.New()
	sdktest.Configure(t, p, "file", configJSON(path))
	return p
}

func configJSON(path string) string {
	b, _ := json.Marshal(map[string]string{"path": path})
	return string(b)
}

func TestConformanceInProcess(t *testing.T) {
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		return s.Configure(t, file.New(), "file", configJSON(seedFile(t, s.Seed)))
	})
}

func TestConformancePluginProcess(t *testing.T) {
	sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
		return s.Configure(t, sdktest.Process(t), "file", configJSON(seedFile(t, s.Seed)))
	})
}

const (
	fixtureAccess  = "sk-ant-oat01-fixture-SECRET"
	fixtureRefresh = "sk-ant-ort01-fixture-SECRET"
)

var fixtureExpiry = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

// copyFixture copies testdata/name to a temp dir and returns its path.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), ".credentials.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRead(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		wantExpiry  time.Time
		wantRefresh string
		wantMeta    map[string]string
		wantScopes  []string
		wantErr     string // "" = success
		notFound    bool
	}{
		"valid_ms.json":             {wantExpiry: fixtureExpiry, wantRefresh: fixtureRefresh, wantMeta: map[string]string{"subscriptionType": "max"}, wantScopes: []string{"user:inference", "user:profile"}},
		"valid_seconds.json":        {wantExpiry: fixtureExpiry, wantRefresh: fixtureRefresh},
		"valid_rfc3339.json":        {wantExpiry: fixtureExpiry, wantRefresh: fixtureRefresh},
		"valid_string_ms.json":      {wantExpiry: fixtureExpiry},
		"valid_null_expiry.json":    {},
		"extra_fields.json":         {wantExpiry: fixtureExpiry, wantRefresh: fixtureRefresh, wantMeta: map[string]string{"subscriptionType": "pro"}, wantScopes: []string{"user:inference"}},
		"truncated.json":            {wantErr: "truncated JSON"},
		"malformed.json":            {wantErr: "malformed JSON at byte"},
		"wrong_access_type.json":    {wantErr: "claudeAiOauth.accessToken: want a string, got number"},
		"wrong_expiry_type.json":    {wantErr: "claudeAiOauth.expiresAt: want epoch milliseconds or an RFC 3339 string, got object"},
		"wrong_scopes_type.json":    {wantErr: "claudeAiOauth.scopes: want an array of strings, got string"},
		"key_is_array.json":         {wantErr: "claudeAiOauth: want an object, got array"},
		"array_root.json":           {wantErr: "the file is not a JSON object"},
		"negative_expiry.json":      {wantErr: "expiresAt: expiry -5 is negative"},
		"trailing.json":             {wantErr: "trailing data"},
		"empty_file.json":           {wantErr: "truncated JSON"},
		"valid_float_ms.json":       {wantExpiry: fixtureExpiry, wantRefresh: fixtureRefresh},
		"valid_rfc3339_offset.json": {wantExpiry: fixtureExpiry, wantRefresh: fixtureRefresh}, // +02:00, sub-millisecond part dropped
		"valid_zero_expiry.json":    {},
		"null_extra_field.json":     {wantMeta: map[string]string{"tier": "x"}}, // null and number fields are not metadata
		"trailing_garbage.json":     {wantErr: "trailing data"},
		"fractional_expiry.json":    {wantErr: "claudeAiOauth.expiresAt: expiry 1904281689.5 has a fraction"},
		"expiry_not_a_time.json":    {wantErr: "claudeAiOauth.expiresAt: want epoch milliseconds, epoch seconds or an RFC 3339 time, got a string"},
		"expiry_before_1970.json":   {wantErr: "claudeAiOauth.expiresAt: expiry is before 1970"},
		"scope_not_string.json":     {wantErr: "claudeAiOauth.scopes: element 1: want a string, got null"},
		"no_key.json":               {wantErr: `no "claudeAiOauth" object`, notFound: true},
		"empty_access.json":         {wantErr: "claudeAiOauth has no accessToken", notFound: true},
		// What Claude Code writes when its refresh token is refused
		// (invalid_grant): its login blanked, to be redone. Not-found, not
		// a fault, so the chain moves on and credhost writes nothing.
		"blanked_after_invalid_grant.json": {wantErr: "claudeAiOauth has no accessToken", notFound: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := copyFixture(t, name)
			before, _ := os.ReadFile(path)
			stBefore, _ := os.Stat(path)
			cred, err := configured(t, path).Read(context.Background())
			if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
				t.Errorf("Read changed the file")
			}
			if st, _ := os.Stat(path); !st.ModTime().Equal(stBefore.ModTime()) || st.Mode() != stBefore.Mode() {
				t.Errorf("Read changed the file's mtime or mode")
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Read: got %v; want an error naming %s and containing %q", err, path, tc.wantErr)
				}
				if got := errors.Is(err, sdk.ErrNotFound); got != tc.notFound {
					t.Errorf("errors.Is(err, ErrNotFound) = %v; want %v", got, tc.notFound)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("the error quotes a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if cred.AccessToken != fixtureAccess || cred.RefreshToken != tc.wantRefresh || !cred.ExpiresAt.Equal(tc.wantExpiry) {
				t.Errorf("Read: %v; want access %s, refresh %q, expiry %v", cred, sdk.Fingerprint(fixtureAccess), sdk.Fingerprint(tc.wantRefresh), tc.wantExpiry)
			}
			if strings.Join(cred.Scopes, ",") != strings.Join(tc.wantScopes, ",") {
				t.Errorf("scopes %q; want %q", cred.Scopes, tc.wantScopes)
			}
			if len(cred.Metadata) != len(tc.wantMeta) {
				t.Errorf("metadata %q; want %q", cred.Metadata, tc.wantMeta)
			}
			for k, v := range tc.wantMeta {
				if cred.Metadata[k] != v {
					t.Errorf("metadata[%s] = %q; want %q", k, cred.Metadata[k], v)
				}
			}
		})
	}
}

func TestReadFaults(t *testing.T) {
	t.Parallel()
	t.Run("missing file is not found", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "nope", ".credentials.json")
		_, err := configured(t, path).Read(context.Background())
		if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "no credentials file at "+path) {
			t.Errorf("got %v; want not-found naming %s", err, path)
		}
		if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Read created the directory")
		}
	})
	t.Run("huge file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), ".credentials.json")
		if err := os.WriteFile(path, bytes.Repeat([]byte(" "), 1<<20+1), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := configured(t, path).Read(context.Background())
		if err == nil || errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), path+": larger than 1048576 bytes") {
			t.Errorf("got %v; want a fault naming the path and the limit", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		path := t.TempDir()
		_, err := configured(t, path).Read(context.Background())
		if err == nil || errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), path+": not a regular file (a directory)") {
			t.Errorf("got %v; want a fault naming the path", err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() == 0 {
			t.Skip("root reads files whatever their mode")
		}
		path := copyFixture(t, "valid_ms.json")
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		_, err := configured(t, path).Read(context.Background())
		if err == nil || errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), path+": cannot open: permission denied") {
			t.Errorf("got %v; want permission denied naming the path", err)
		}
	})
	t.Run("token prefix", func(t *testing.T) {
		t.Parallel()
		path := copyFixture(t, "valid_ms.json")
		p := file.New()
		sdktest.Configure(t, p, "f", `{"path":"`+path+`","token_prefix":"sk-ant-api03-"}`)
		_, err := p.Read(context.Background())
		if err == nil || errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), `does not start with "sk-ant-api03-"`) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("got %v; want a prefix fault without the token", err)
		}
		p = file.New()
		sdktest.Configure(t, p, "f", `{"path":"`+path+`","token_prefix":"sk-ant-oat01-"}`)
		if _, err := p.Read(context.Background()); err != nil {
			t.Errorf("matching prefix: %v", err)
		}
	})
}

func TestConfigure(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	tests := map[string]struct {
		config   string
		env      map[string]string
		wantPath string
		wantErr  string
	}{
		"default is ~/.claude":        {config: `{}`, wantPath: filepath.Join(home, ".claude", ".credentials.json")},
		"CLAUDE_CONFIG_DIR wins":      {config: `{}`, env: map[string]string{"CLAUDE_CONFIG_DIR": "/cfg"}, wantPath: "/cfg/.credentials.json"},
		"empty CLAUDE_CONFIG_DIR":     {config: `{}`, env: map[string]string{"CLAUDE_CONFIG_DIR": ""}, wantPath: filepath.Join(home, ".claude", ".credentials.json")},
		"tilde path":                  {config: `{"path":"~/x/c.json"}`, wantPath: filepath.Join(home, "x", "c.json")},
		"unknown key":                 {config: `{"pth":"/x"}`, wantErr: `unknown key "pth"`},
		"wrong type":                  {config: `{"path":7}`, wantErr: `key "path": want string, got number`},
		"explicit path beats env":     {config: `{"path":"/a/b.json"}`, env: map[string]string{"CLAUDE_CONFIG_DIR": "/cfg"}, wantPath: "/a/b.json"},
		"relative path made absolute": {config: `{"path":"/a/../b/c.json"}`, wantPath: "/b/c.json"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := file.New(
				file.WithLookupEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }),
				file.WithHomeDir(func() (string, error) { return home, nil }),
			)
			err := p.Configure(context.Background(), sdk.ConfigureRequest{Name: "f", Config: []byte(tc.config)})
			if tc.wantErr != "" {
				if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Configure: got %v; want ErrInvalidConfig containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			info, _ := p.Info(context.Background())
			if len(info.Locks) == 0 || info.Locks[0].Path != tc.wantPath+".lock" {
				t.Errorf("locks %v; want first the flock %q (the store's path + .lock)", info.Locks, tc.wantPath+".lock")
			}
			_, err = p.Read(context.Background())
			if !strings.Contains(err.Error(), tc.wantPath) {
				t.Errorf("Read error %v does not name %s", err, tc.wantPath)
			}
		})
	}
}

func TestSaveKeepsEverythingElse(t *testing.T) {
	t.Parallel()
	path := copyFixture(t, "extra_fields.json")
	p := configured(t, path)
	old, err := p.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fresh := old.Clone()
	fresh.AccessToken, fresh.RefreshToken = "new-access", "new-refresh"
	fresh.ExpiresAt = time.UnixMilli(1904281689123)
	if err := p.Save(context.Background(), fresh); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("saved file does not parse: %v", err)
	}
	var want map[string]any
	orig, _ := os.ReadFile(filepath.Join("testdata", "extra_fields.json"))
	json.Unmarshal(orig, &want)
	inner := want["claudeAiOauth"].(map[string]any)
	inner["accessToken"], inner["refreshToken"], inner["expiresAt"] = "new-access", "new-refresh", float64(1904281689123)
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("saved document:\n%s\nwant:\n%s", gotJSON, wantJSON)
	}
	if !bytes.Contains(data, []byte(`"expiresAt":1904281689123`)) {
		t.Errorf("expiresAt not written as integer milliseconds: %s", data)
	}
	if i, j := bytes.Index(data, []byte("mcpOAuth")), bytes.Index(data, []byte("zzz")); i < 0 || j < i {
		t.Errorf("top-level key order not kept: %s", data)
	}
}

func TestSaveFileSystem(t *testing.T) {
	cred := sdk.Credential{AccessToken: "a", RefreshToken: "r", ExpiresAt: time.UnixMilli(1904281689000)}
	t.Run("creates parent 0700 and file 0600", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "new", ".credentials.json")
		if err := configured(t, path).Save(context.Background(), cred); err != nil {
			t.Fatal(err)
		}
		assertMode(t, filepath.Dir(path), 0o700)
		assertMode(t, path, 0o600)
	})
	t.Run("narrows 0644 to 0600, keeps 0400", func(t *testing.T) {
		t.Parallel()
		for start, want := range map[os.FileMode]os.FileMode{0o644: 0o600, 0o400: 0o400, 0o666: 0o600} {
			path := copyFixture(t, "valid_ms.json")
			os.Chmod(path, start)
			if err := configured(t, path).Save(context.Background(), cred); err != nil {
				t.Fatal(err)
			}
			assertMode(t, path, want)
		}
	})
	t.Run("symlink stays a symlink", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		target := filepath.Join(dir, "real", "creds.json")
		os.MkdirAll(filepath.Dir(target), 0o700)
		os.WriteFile(target, []byte(`{"keep":1}`), 0o600)
		link := filepath.Join(dir, ".credentials.json")
		if err := os.Symlink("real/creds.json", link); err != nil {
			t.Fatal(err)
		}
		p := configured(t, link)
		if err := p.Save(context.Background(), cred); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the link was replaced by a file")
		}
		data, _ := os.ReadFile(target)
		if !bytes.Contains(data, []byte(`"keep":1`)) || !bytes.Contains(data, []byte(`"accessToken":"a"`)) {
			t.Errorf("the target was not updated in place: %s", data)
		}
		info, _ := p.Info(context.Background())
		if len(info.Locks) == 0 || info.Locks[0].Path != target+".lock" {
			t.Errorf("locks %v; want first the flock beside the target", info.Locks)
		}
	})
	t.Run("refuses to overwrite an unparsable file", func(t *testing.T) {
		t.Parallel()
		for _, fixture := range []string{"malformed.json", "truncated.json", "array_root.json", "key_is_array.json", "wrong_access_type.json"} {
			path := copyFixture(t, fixture)
			before, _ := os.ReadFile(path)
			err := configured(t, path).Save(context.Background(), cred)
			if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
				t.Errorf("%s: Save: %v; want a refusal", fixture, err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Errorf("%s: the file changed", fixture)
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
				t.Errorf("%s: a temporary file was left behind", fixture)
			}
		}
	})
	t.Run("metadata may not overwrite owned fields", func(t *testing.T) {
		t.Parallel()
		path := copyFixture(t, "valid_ms.json")
		bad := cred
		bad.Metadata = map[string]string{"accessToken": "x"}
		if err := configured(t, path).Save(context.Background(), bad); err == nil {
			t.Errorf("Save with metadata accessToken succeeded")
		}
	})
}

func TestSaveIgnoresUmask(t *testing.T) {
	// Not parallel: the umask is process-wide.
	old := setUmask(0)
	defer setUmask(old)
	path := filepath.Join(t.TempDir(), "d", ".credentials.json")
	if err := configured(t, path).Save(context.Background(), sdk.Credential{AccessToken: "a"}); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Dir(path), 0o700)
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s: mode %o; want %o", path, st.Mode().Perm(), want)
	}
}

func TestConcurrentSaveAndRead(t *testing.T) {
	t.Parallel()
	path := copyFixture(t, "extra_fields.json")
	p := configured(t, path)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			for j := range 10 {
				if i%2 == 0 {
					c := sdk.Credential{AccessToken: "tok", RefreshToken: "r", ExpiresAt: time.UnixMilli(int64(1904281689000 + j))}
					if err := p.Save(context.Background(), c); err != nil {
						t.Errorf("Save: %v", err)
					}
				} else if _, err := p.Read(context.Background()); err != nil {
					t.Errorf("Read during Saves: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if _, err := p.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte("mcpOAuth")) {
		t.Errorf("concurrent saves lost a key")
	}
}

func TestSaveExpiryRoundTrip(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		expiry  time.Time
		want    time.Time // what Read gives back
		written string    // the expiresAt literal in the file
	}{
		"milliseconds":                 {expiry: time.UnixMilli(1904281689123), want: time.UnixMilli(1904281689123), written: `"expiresAt":1904281689123`},
		"sub-millisecond is truncated": {expiry: time.UnixMilli(1904281689123).Add(999 * time.Microsecond), want: time.UnixMilli(1904281689123), written: `"expiresAt":1904281689123`},
		"unknown is null":              {expiry: time.Time{}, want: time.Time{}, written: `"expiresAt":null`},
		"before 2001, whole seconds":   {expiry: time.Unix(1000, 0), want: time.Unix(1000, 0), written: `"expiresAt":1000`},
		"before 2001, with a fraction": {expiry: time.UnixMilli(1000500), want: time.UnixMilli(1000500), written: `"expiresAt":"1970-01-01T00:16:40.500Z"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := copyFixture(t, "valid_ms.json")
			p := configured(t, path)
			if err := p.Save(context.Background(), sdk.Credential{AccessToken: "a", ExpiresAt: tc.expiry}); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			if !bytes.Contains(data, []byte(tc.written)) {
				t.Errorf("file %s; want it to contain %s", data, tc.written)
			}
			got, err := p.Read(context.Background())
			if err != nil {
				t.Fatalf("Read after Save: %v", err)
			}
			if !got.ExpiresAt.Equal(tc.want) {
				t.Errorf("expiry read back %v; want %v", got.ExpiresAt, tc.want)
			}
		})
	}
	t.Run("an expiry Read would reject is not written", func(t *testing.T) {
		t.Parallel()
		path := copyFixture(t, "valid_ms.json")
		before, _ := os.ReadFile(path)
		err := configured(t, path).Save(context.Background(), sdk.Credential{AccessToken: "a", ExpiresAt: time.Unix(-86400, 0)})
		if err == nil || !strings.Contains(err.Error(), "before 1970") {
			t.Errorf("Save of a 1969 expiry: %v; want an error", err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("the file changed")
		}
	})
}

func TestSaveKeepsNonStringFields(t *testing.T) {
	t.Parallel()
	path := copyFixture(t, "null_extra_field.json")
	p := configured(t, path)
	cred, err := p.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Save(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{`"subscriptionType":null`, `"count":3`, `"tier":"x"`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("saved file %s lacks %s", data, want)
		}
	}
}

func TestSaveNeverWidensMode(t *testing.T) {
	t.Parallel()
	path := copyFixture(t, "valid_ms.json")
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	err := configured(t, path).Save(context.Background(), sdk.Credential{AccessToken: "a"})
	if os.Geteuid() != 0 {
		// Not root: the file cannot be read, so it is not rewritten.
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("Save over an unreadable file: %v; want permission denied", err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0)
}

// TestNotFoundHintIsTheProgramsLoginWords: a missing file or credential
// hints at logging in, in the words the wiring program gives (credhost's
// name Claude Code), and generic ones without; the reason reads alone.
func TestNotFoundHintIsTheProgramsLoginWords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noCred := filepath.Join(dir, "nocred.json")
	if err := os.WriteFile(noCred, []byte(`{"other":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.json"), noCred} {
		for _, tc := range []struct {
			opts []file.Option
			want string
		}{{nil, file.DefaultLoginHint}, {[]file.Option{file.WithLoginHint("run the client's login")}, "run the client's login"}} {
			p := file.New(tc.opts...)
			sdktest.Configure(t, p, "file", configJSON(path))
			_, err := p.Read(context.Background())
			if !errors.Is(err, sdk.ErrNotFound) || sdk.Hint(err) != tc.want || strings.HasPrefix(err.Error(), sdk.ErrNotFound.Error()) {
				t.Errorf("%s: got %v (hint %q); want not-found reading as its reason, hinting %q", path, err, sdk.Hint(err), tc.want)
			}
		}
	}
}
