//go:build unix

package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/host/hosttest"
	"github.com/credhost/credhost/sdk"
	sdkplugin "github.com/credhost/credhost/sdk/plugin"
)

// TestPluginProcessGetsOnlyTheEnvironmentItIsGiven: a plugin process sees
// the base set (PATH, HOME, LC_TIME, ...), go-plugin's own variables and the
// log level, plus what its provider's env: and its built-in's wiring name;
// never a token variable nobody named for it.
func TestPluginProcessGetsOnlyTheEnvironmentItIsGiven(t *testing.T) {
	t.Parallel()
	environ := append(os.Environ(),
		"ANTHROPIC_AUTH_TOKEN=tok-secret-enterprise", "CLAUDE_CODE_OAUTH_TOKEN=tok-secret-oauth",
		"AWS_PROFILE=corp", "LC_TIME=C", "HOME="+t.TempDir())
	withEnviron := Option(func(o *options) { o.environ = func() []string { return environ } })
	base := []string{"PATH", "HOME", "LC_TIME", sdkplugin.LogLevelEnv, sdkplugin.Handshake.MagicCookieKey}
	tests := map[string]struct {
		env     []string // the provider's env: list
		builtin bool     // a built-in run as a process, whose wiring names $ANTHROPIC_AUTH_TOKEN
		want    []string
		wantNot []string
	}{
		"external plugin, nothing named": {
			want:    base,
			wantNot: []string{"ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "AWS_PROFILE"},
		},
		"external plugin, env names two": {
			env:     []string{"AWS_PROFILE", "CLAUDE_CODE_OAUTH_TOKEN"},
			want:    append(slices.Clone(base), "AWS_PROFILE", "CLAUDE_CODE_OAUTH_TOKEN"),
			wantNot: []string{"ANTHROPIC_AUTH_TOKEN"},
		},
		"built-in process gets what its config names": {
			builtin: true,
			want:    append(slices.Clone(base), "ANTHROPIC_AUTH_TOKEN"),
			wantNot: []string{"CLAUDE_CODE_OAUTH_TOKEN", "AWS_PROFILE"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(true, "envdump")
			cfg.Providers[0].Env = tc.env
			var builtins map[string]Builtin
			if tc.builtin {
				cfg.Plugins.Builtin = BuiltinProcess
				pc := &cfg.Providers[0]
				pc.Command, pc.Args, pc.Plugin = "", nil, "probe"
				pc.Config = map[string]any{"var": "ANTHROPIC_AUTH_TOKEN"}
				builtins = map[string]Builtin{"probe": {
					New:     func() sdk.Provider { return probeProvider("envdump") },
					Command: func() *exec.Cmd { return exec.Command(os.Args[0], helperArg, "envdump") },
					Env:     func(config map[string]any) []string { return []string{config["var"].(string)} },
				}}
			}
			h, err := New(cfg, WithBuiltins(builtins), withEnviron)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			res, err := h.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if res.Credential.Metadata["pid"] == strconv.Itoa(os.Getpid()) {
				t.Fatal("the provider ran in-process; want a plugin process")
			}
			got := strings.Split(res.Credential.Metadata["env"], ",")
			for _, v := range tc.want {
				if !slices.Contains(got, v) {
					t.Errorf("the plugin lacks $%s; its environment: %v", v, got)
				}
			}
			for _, v := range tc.wantNot {
				if slices.Contains(got, v) {
					t.Errorf("the plugin sees $%s, which nobody named for it", v)
				}
			}
		})
	}
}

// pluginScript writes an executable shell script that serves found:A as
// a plugin (through this test binary); before it does, it runs pre.
func pluginScript(t *testing.T, path, pre string) string {
	t.Helper()
	script := fmt.Sprintf("#!/bin/sh\n%s\nexec %q %s found:A\n", pre, os.Args[0], helperArg)
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(script))
	return hex.EncodeToString(sum[:])
}

// TestPinnedPluginWritableByOthersIsRefused: a pinned plugin that someone
// other than its owner may rewrite (the file) or replace (its directory)
// does not start, and the message names the file; doctor says the same.
func TestPinnedPluginWritableByOthersIsRefused(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		fileMode, dirMode os.FileMode
		wantErr           string // "" : it starts
	}{
		"owner only":                   {fileMode: 0o700, dirMode: 0o700},
		"readable by all":              {fileMode: 0o755, dirMode: 0o755},
		"group-writable file":          {fileMode: 0o770, dirMode: 0o700, wantErr: "plugin %[1]s is writable by group or others"},
		"world-writable file":          {fileMode: 0o757, dirMode: 0o755, wantErr: "plugin %[1]s is writable by group or others"},
		"group-writable directory":     {fileMode: 0o700, dirMode: 0o770, wantErr: "the directory of plugin %[1]s, %[2]s is writable by group or others"},
		"sticky world-writable folder": {fileMode: 0o700, dirMode: 0o1777, wantErr: "the directory of plugin %[1]s, %[2]s is writable by group or others"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "plugins")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "plugin")
			sum := pluginScript(t, path, "")
			if err := os.Chmod(path, tc.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(true, "notfound")
			cfg.Providers[0].Command, cfg.Providers[0].Args, cfg.Providers[0].SHA256 = path, nil, sum
			h, _ := newTestHost(t, cfg)
			res, err := h.Token(context.Background())
			reports := h.Doctor(context.Background())
			if tc.wantErr == "" {
				if err != nil || res.Provider != "p0" {
					t.Fatalf("Token: %v; want the pinned plugin's token", err)
				}
				return
			}
			want := fmt.Sprintf(tc.wantErr, path, dir)
			var ce *ChainError
			if !errors.As(err, &ce) || !strings.Contains(ce.Attempts[0].Error(), want) {
				t.Fatalf("Token: %v; want the start refused with %q", err, want)
			}
			if len(reports) == 0 || len(reports[0].Findings) == 0 || !strings.Contains(reports[0].Findings[0].Message, want) {
				t.Errorf("doctor: %+v; want a finding %q", reports, want)
			}
		})
	}
}

// TestWrapperScriptPluginEndsAtStartTimeout: a plugin that is a shell
// script running its server without exec (so killing the script alone
// leaves its child holding the pipes) must not hold the host past
// start_timeout, and its child must go with it.
func TestWrapperScriptPluginEndsAtStartTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, childPid := filepath.Join(dir, "wrapper"), filepath.Join(dir, "child")
	script := fmt.Sprintf("#!/bin/sh\nsleep 60 &\necho $! > %q\nwait\n", childPid)
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	// p1 runs in-process: a second plugin process could itself miss the
	// one-second start on a loaded machine.
	cfg := testConfig(false, "notfound", "found:A")
	cfg.Providers[0].Plugin, cfg.Providers[0].Command = "", path
	cfg.Plugins.StartTimeout = Duration(time.Second)
	h, _ := newTestHost(t, cfg)
	start := time.Now()
	res, err := h.Token(context.Background())
	if err != nil || res.Provider != "p1" {
		t.Fatalf("Token: %v (from %q); want p1's token", err, res.Provider)
	}
	// start_timeout plus a generous margin; before, this took the child's
	// whole minute.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Token took %v with start_timeout 1s: the wrapper held up the host", d)
	}
	h.Close()
	hosttest.AssertGone(t, hosttest.ReadPids(t, childPid)...)
}

// TestPluginsEndWithAKilledHost: when the host is killed outright
// (SIGKILL: no Close, no deferred cleanup), its plugin and a child the
// plugin started are gone within two seconds, whether the plugin was idle
// or busy in a Read.
func TestPluginsEndWithAKilledHost(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"idle", "busy"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			host := exec.Command(os.Args[0], hostHelperArg, mode, dir)
			host.Stderr = os.Stderr
			if err := host.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { host.Wait(); close(done) }()
			pids := hosttest.ReadPids(t, filepath.Join(dir, "pids"))
			if mode == "idle" {
				readyDeadline := time.Now().Add(20 * time.Second)
				for {
					if _, err := os.Stat(filepath.Join(dir, "host-ready")); err == nil {
						break
					}
					if time.Now().After(readyDeadline) {
						t.Fatal("the host got no token from its plugin")
					}
					time.Sleep(20 * time.Millisecond)
				}
			} else {
				time.Sleep(300 * time.Millisecond) // let the Read begin
			}
			for _, pid := range pids {
				if !hosttest.Alive(pid) {
					t.Fatalf("process %d ended before the host was killed", pid)
				}
			}
			host.Process.Kill()
			<-done
			hosttest.AssertGone(t, pids...)
		})
	}
}

// TestOversizedTokenIsRejected: a plugin's answer over the message cap
// (about 1 MiB) fails at the gRPC layer, and a token over 64 KiB is
// refused by name, whether it comes from a plugin process or in-process.
func TestOversizedTokenIsRejected(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		mode    string
		process []bool
		want    string
	}{
		"2 MiB access token":    {mode: "big:access:2097152", process: []bool{true}, want: "larger than max"},
		"100 KiB access token":  {mode: "big:access:102400", process: []bool{true, false}, want: "access token is 102400 bytes; the limit is 65536 bytes"},
		"100 KiB refresh token": {mode: "big:refresh:102400", process: []bool{true, false}, want: "refresh token is 102400 bytes; the limit is 65536 bytes"},
	}
	for name, tc := range tests {
		for _, process := range tc.process {
			t.Run(name+modeSuffix(process), func(t *testing.T) {
				t.Parallel()
				cfg := testConfig(process, tc.mode, "found:A")
				b := scriptedBuiltins(cfg)
				b[tc.mode] = Builtin{New: func() sdk.Provider { return boundaryProvider(tc.mode) }}
				h, err := New(cfg, WithBuiltins(b))
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				res, err := h.Token(context.Background())
				if err != nil || res.Provider != "p1" {
					t.Fatalf("Token: %v (from %q); want the oversized answer skipped for p1", err, res.Provider)
				}
				st := h.Status(context.Background())
				if st[0].State != StateError || !strings.Contains(st[0].Reason, tc.want) {
					t.Errorf("status of p0: %s %q; want an error saying %q", st[0].State, st[0].Reason, tc.want)
				}
			})
		}
	}
}

// TestOversizedRefreshedTokenIsRejected: a refresh that yields a token
// over 64 KiB is a failed refresh (degraded, the reason naming the size),
// and nothing is saved; from a plugin process or in-process.
func TestOversizedRefreshedTokenIsRejected(t *testing.T) {
	t.Parallel()
	const mode = "refreshbig:102400"
	for _, process := range []bool{false, true} {
		t.Run(modeSuffix(process)[1:], func(t *testing.T) {
			t.Parallel()
			logs := &syncBuffer{}
			logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
			builtins := map[string]Builtin{mode: {New: func() sdk.Provider { return boundaryProvider(mode) }}}
			h, err := New(testConfig(process, mode), WithLogger(logger), WithBuiltins(builtins))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			res, err := h.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			want := "access token is 102400 bytes; the limit is 65536 bytes"
			if !res.Degraded || res.DegradedReason == nil || !strings.Contains(res.DegradedReason.Error(), want) || !strings.Contains(res.DegradedReason.Error(), `provider "p0"`) {
				t.Errorf("Token: degraded %v, reason %v; want degraded naming p0 and %q", res.Degraded, res.DegradedReason, want)
			}
			if len(res.Credential.AccessToken) > 1000 {
				t.Errorf("Token returned the oversized token")
			}
			if out := logs.String(); strings.Contains(out, "Save was called") || !strings.Contains(out, "degraded") {
				t.Errorf("logs: want the degraded refresh and no save:\n%s", out)
			}
		})
	}
}

// TestPinnedPluginThatWouldRunAsSomeoneElseIsRefused: a pinned plugin that
// is set-user-ID or set-group-ID (it would run as another user, whom the
// host cannot end), or a pinned script whose #! interpreter lies in a
// directory anyone may write (the pin covers the script, not what runs
// it), does not start; token and doctor name the file.
func TestPinnedPluginThatWouldRunAsSomeoneElseIsRefused(t *testing.T) {
	t.Parallel()
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	tests := map[string]struct {
		mode    os.FileMode
		interp  bool // the #! line names a copy of sh in a world-writable directory
		wantErr string
	}{
		"set-user-ID":                    {mode: 0o700 | os.ModeSetuid, wantErr: "is set-user-ID or set-group-ID"},
		"set-group-ID":                   {mode: 0o700 | os.ModeSetgid, wantErr: "is set-user-ID or set-group-ID"},
		"interpreter in a public folder": {mode: 0o700, interp: true, wantErr: "is writable by group or others"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			interp := "/bin/sh"
			if tc.interp {
				public := filepath.Join(dir, "public")
				os.Mkdir(public, 0o700)
				interp = filepath.Join(public, "sh")
				if err := os.WriteFile(interp, sh, 0o755); err != nil {
					t.Fatal(err)
				}
				os.Chmod(public, 0o777)
			}
			path := filepath.Join(dir, "plugin")
			script := fmt.Sprintf("#!%s\nexec %q %s found:A\n", interp, os.Args[0], helperArg)
			if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(script))
			cfg := testConfig(true, "notfound")
			cfg.Providers[0].Command, cfg.Providers[0].Args, cfg.Providers[0].SHA256 = path, nil, hex.EncodeToString(sum[:])
			h, _ := newTestHost(t, cfg)
			_, err := h.Token(context.Background())
			var ce *ChainError
			if !errors.As(err, &ce) || !strings.Contains(ce.Attempts[0].Error(), tc.wantErr) || !strings.Contains(ce.Attempts[0].Error(), path) {
				t.Fatalf("Token: %v; want the start refused naming %s: %q", err, path, tc.wantErr)
			}
			reports := h.Doctor(context.Background())
			if len(reports) == 0 || len(reports[0].Findings) == 0 || !strings.Contains(reports[0].Findings[0].Message, tc.wantErr) {
				t.Errorf("doctor: %+v; want a finding %q", reports, tc.wantErr)
			}
		})
	}
}
