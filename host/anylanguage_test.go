//go:build unix

package host

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Tests of what a plugin written in another language meets: each runs a
// real plugin process that is not built with go-plugin (the raw plugin of
// rawplugin_test.go, or a shell script).

// rawConfig is a config whose providers are raw plugins, one per option
// list.
func rawConfig(options ...string) *Config {
	cfg := testConfig(true)
	for i, o := range options {
		cfg.Providers = append(cfg.Providers, ProviderConfig{
			Name: "p" + string(rune('0'+i)), Line: i + 1, Column: 3,
			Command: os.Args[0], Args: []string{rawArg, o},
		})
	}
	return cfg
}

// newLevelHost is newTestHost with the logger at level.
func newLevelHost(t *testing.T, cfg *Config, level hclog.Level) (*Host, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	h, err := New(cfg, WithLogger(hclog.New(&hclog.LoggerOptions{Output: logs, Level: level})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h, logs
}

// TestPluginWithoutControllerEndsPromptly: a plugin that does not serve
// go-plugin's controller service (Shutdown) is ended at once on Close
// (SIGTERM), not after go-plugin's 2-second wait with a "failed to exit
// gracefully" warning and a "signal: killed" error.
func TestPluginWithoutControllerEndsPromptly(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	h, logs := newLevelHost(t, rawConfig("found,pid="+pidFile), hclog.Trace)
	res, err := h.Token(context.Background())
	if err != nil || res.Credential.AccessToken != "raw-token-A" {
		t.Fatalf("Token: %v, %v", res, err)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(raw))
	start := time.Now()
	h.Close()
	took := time.Since(start)
	t.Logf("Close took %v", took)
	// go-plugin alone waits 2 s before it kills such a plugin.
	if took >= 1900*time.Millisecond {
		t.Errorf("Close took %v; want the plugin ended without go-plugin's 2 s wait", took)
	}
	for _, bad := range []string{"failed to exit gracefully", "[ERROR]", "[WARN]"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("logs have %q:\n%s", bad, logs)
		}
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("plugin process %d still there after Close (kill 0: %v)", pid, err)
	}
}

// TestGoPluginStillShutsDownThroughTheController: a plugin built with the
// SDK (go-plugin) is asked through its controller and exits by itself,
// quietly and without a signal.
func TestGoPluginStillShutsDownThroughTheController(t *testing.T) {
	t.Parallel()
	h, logs := newLevelHost(t, testConfig(true, "found:A"), hclog.Trace)
	if _, err := h.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.Close()
	if took := time.Since(start); took >= 1900*time.Millisecond {
		t.Errorf("Close took %v", took)
	}
	for _, bad := range []string{"failed to exit gracefully", "[ERROR]", "SIGTERM", "killing"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("logs have %q:\n%s", bad, logs)
		}
	}
}

// TestPrefixedMessagesReadOnce: a plugin in another language that writes
// the sentinel's words in front of its reason (as Go's fmt.Errorf("%w: …")
// habit does) reads exactly like one that does not: the code alone
// decides, and the words appear once.
func TestPrefixedMessagesReadOnce(t *testing.T) {
	t.Parallel()
	h, _ := newLevelHost(t, rawConfig("prefixed", "badconfig", "plain"), hclog.Off)
	_, err := h.Token(context.Background())
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("Token: %v; want a chain error", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"\n  p0 (empty): nothing in the raw store\n",
		"\n  p1 (error): configure: key \"x\" is required\n",
		"\n  p2 (empty): nothing in the raw store\n",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("chain error lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "no credential found"); n != 1 {
		t.Errorf("\"no credential found\" %d times; want once (the heading):\n%s", n, msg)
	}
	if strings.Contains(msg, "invalid provider config") {
		t.Errorf("the sentinel's words read in the reason:\n%s", msg)
	}
}

// TestPlainStderrIsHeard: a line on a plugin's stderr that is not hclog
// JSON is logged at warn (it was dropped to debug), JSON lines keep their
// level whatever their timestamp format, a message of several lines is
// logged line by line under the provider's name, and nothing unprintable
// passes.
func TestPlainStderrIsHeard(t *testing.T) {
	t.Parallel()
	h, logs := newLevelHost(t, rawConfig("stderr,found"), hclog.Info)
	if _, err := h.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.Close() // every stderr line is logged once the process is gone
	out := logs.String()
	for _, want := range []string{
		"[WARN]  p0: plain line from a raw plugin\n",
		"[INFO]  p0: json line without microseconds: n=1\n",
		"[WARN]  p0: first of two lines\n",
		"[WARN]  p0: second of two lines\n",
		"[WARN]  p0:  [31mred [0m and a tab here\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "a debug line") || strings.Contains(out, "\x1b") {
		t.Errorf("logs have a debug line or an escape at info:\n%q", out)
	}
	if strings.Contains(out, "stdio") {
		t.Errorf("logs warn about go-plugin's stdio service, which credhost does not use:\n%s", out)
	}
}

// TestStartFailureIsOneReadableLine: a plugin that fails before its
// handshake (a Python traceback) is heard at warn, line by line, and the
// chain error says in one line that it exited, how, and its last words,
// instead of go-plugin's two-line "Unrecognized remote plugin message".
func TestStartFailureIsOneReadableLine(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "plugin.sh")
	body := "#!/bin/sh\n" +
		"echo 'Traceback (most recent call last):' >&2\n" +
		"echo '  File \"/opt/corp/plugin.py\", line 3, in <module>' >&2\n" +
		"echo \"ModuleNotFoundError: No module named 'grpc'\" >&2\n" +
		"exit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := map[string]ProviderConfig{
		"shell script": {Command: script},
		"raw plugin":   {Command: os.Args[0], Args: []string{rawArg, "traceback"}},
	}
	for name, pc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(true)
			pc.Name, pc.Line, pc.Column = "corp", 1, 3
			cfg.Providers = append(cfg.Providers, pc)
			h, logs := newLevelHost(t, cfg, hclog.Warn)
			_, err := h.Token(context.Background())
			if err == nil {
				t.Fatal("Token succeeded")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[1], "  corp (error): start: plugin ") ||
				!strings.Contains(lines[1], "exited before the plugin handshake (exit status 1)") ||
				!strings.HasSuffix(lines[1], "ModuleNotFoundError: No module named 'grpc'") {
				t.Errorf("chain error:\n%s\nwant the heading, one line for corp that ends with the traceback's last line, the hint", err)
			}
			h.Close()
			out := logs.String()
			for _, want := range []string{"[WARN]  corp: Traceback (most recent call last):\n", "[WARN]  corp:   File \"/opt/corp/plugin.py\", line 3, in <module>\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("logs lack %q:\n%s", want, out)
				}
			}
			for _, bad := range []string{"failed to exit gracefully", "[ERROR]"} {
				if strings.Contains(out, bad) {
					t.Errorf("logs have %q:\n%s", bad, out)
				}
			}
		})
	}
}

// TestHandshakeWithoutMutualTLSSaysSo: a plugin that serves plain text
// (no certificate in the handshake), or sends its certificate padded, is
// refused at the start with an error that says what is wrong, not at the
// first call as "plugin unavailable (exited or crashed?)".
func TestHandshakeWithoutMutualTLSSaysSo(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"nocert": "the handshake has no TLS certificate (field 6): credhost requires mutual TLS",
		"padded": "the TLS certificate in the handshake (field 6) is base64 with = padding; it must be base64 without padding",
	}
	for opt, want := range tests {
		t.Run(opt, func(t *testing.T) {
			t.Parallel()
			h, logs := newLevelHost(t, rawConfig(opt+",found"), hclog.Warn)
			_, err := h.Token(context.Background())
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Token: %v; want %q", err, want)
			}
			if strings.Contains(err.Error(), "unavailable") {
				t.Errorf("the error reads as a crash: %v", err)
			}
			h.Close()
			if strings.Contains(logs.String(), "failed to exit gracefully") {
				t.Errorf("logs:\n%s", logs)
			}
		})
	}
}

// TestPluginStringsPassTheFilter: what a plugin sends back in an error and
// on stderr (plain and JSON) passes the host's one filter: a value ${VAR}
// expansion put in the config reads as ${VAR}.
func TestPluginStringsPassTheFilter(t *testing.T) {
	t.Parallel()
	const secret = "sk-expanded-secret-0123456789"
	doc := "version: 1\nproviders:\n  - name: corp\n    command: " + os.Args[0] + "\n    args: [" + rawArg + ", echo]\n    config: {key: \"${CORP_SECRET}\"}\n"
	cfg, err := ParseConfig([]byte(doc), "t.yaml", env(map[string]string{"CORP_SECRET": secret}))
	if err != nil {
		t.Fatal(err)
	}
	h, logs := newLevelHost(t, cfg, hclog.Warn)
	_, err = h.Token(context.Background())
	if err == nil {
		t.Fatal("Token succeeded")
	}
	h.Close()
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "${CORP_SECRET}") {
		t.Errorf("error: %v; want the config quoted as the file says it", err)
	}
	out := logs.String()
	if strings.Contains(out, secret) || strings.Count(out, "${CORP_SECRET}") < 2 {
		t.Errorf("logs: want the plain and the JSON stderr line, the secret as ${CORP_SECRET}:\n%s", out)
	}
}

// TestPluginStringsLoseKnownTokens: a plugin that sends back a token that
// crossed its connection, in an error or on stderr (plain or JSON, whole
// or in part), never gets it shown.
func TestPluginStringsLoseKnownTokens(t *testing.T) {
	t.Parallel()
	const token = "raw-leaky-token-0123456789abcdef"
	h, logs := newLevelHost(t, rawConfig("leak"), hclog.Trace)
	res, err := h.Token(context.Background())
	if err != nil || res.Credential.AccessToken != token {
		t.Fatalf("Token: %v, %v", res, err)
	}
	st := h.Status(context.Background())
	h.Close()
	if len(st) != 1 || st[0].State != StateError || !strings.Contains(st[0].Reason, "store broke; it held [redacted]") {
		t.Errorf("status: %+v; want the error with the token redacted", st)
	}
	out := logs.String()
	for _, want := range []string{"plain: the token was [redacted]", "json: part of it: [redacted]", "token=[redacted]"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "0123456789ab") || strings.Contains(st[0].Reason, "0123456789ab") {
		t.Errorf("a part of the token is shown:\n%s\n%+v", out, st)
	}
}

// TestWrapperWithoutExecIsBoundedByStartTimeout: a wrapper script that runs
// its interpreter without exec, which never gets to the handshake, costs
// plugins.start_timeout, not go-plugin's wait for its stdout to close, and
// the error says what happened in one line; its child goes with it.
func TestWrapperWithoutExecIsBoundedByStartTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "wrapper.sh")
	body := "#!/bin/sh\nsleep 60 &\necho $! > " + pidFile + "\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(true)
	cfg.Plugins.StartTimeout = Duration(time.Second)
	cfg.Providers = append(cfg.Providers, ProviderConfig{Name: "corp", Line: 1, Column: 3, Command: script})
	h, _ := newLevelHost(t, cfg, hclog.Off)
	start := time.Now()
	_, err := h.Token(context.Background())
	took := time.Since(start)
	want := "  corp (error): start: plugin " + script + " printed no plugin handshake within plugins.start_timeout (1s)\n"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Token: %v; want %q", err, want)
	}
	t.Logf("Token took %v", took)
	if took > 10*time.Second {
		t.Errorf("Token took %v with a 1 s start_timeout", took)
	}
	raw, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(child, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(child, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the wrapper's child %d outlived the failed start (kill 0: %v)", child, err)
	}
}

// pythonWithGRPC returns a Python 3 that can import grpc and cryptography
// (Debian's python3-grpcio and python3-cryptography), or skips the test.
func pythonWithGRPC(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import grpc, cryptography").Run() == nil {
			return p
		}
	}
	t.Skip("no python3 with grpc and cryptography (apt-get install python3-grpcio python3-cryptography)")
	return ""
}

// TestPythonPluginFromTheProtocolDoc: a plugin written in Python from
// sdk/proto/PROTOCOL.md alone (testdata/pyplugin/plugin.py: no controller,
// no generated code) serves a token, reads as empty once whatever its
// message's prefix, is heard on stderr at warn, and ends promptly and
// quietly; one that fails at import is one readable line.
func TestPythonPluginFromTheProtocolDoc(t *testing.T) {
	t.Parallel()
	python := pythonWithGRPC(t)
	script, err := filepath.Abs(filepath.Join("testdata", "pyplugin", "plugin.py"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(true)
	for i, mode := range []string{"prefixed", "traceback", "found"} {
		cfg.Providers = append(cfg.Providers, ProviderConfig{Name: "py" + mode, Line: i + 1, Column: 3, Command: python, Args: []string{script, mode}})
	}
	h, logs := newLevelHost(t, cfg, hclog.Warn)
	st := h.Status(context.Background())
	res, err := h.Token(context.Background())
	if err != nil || res.Credential.AccessToken != "py-token-A" {
		t.Fatalf("Token: %v, %v", res, err)
	}
	if st[0].State != StateEmpty || st[0].Reason != "nothing in the python store" {
		t.Errorf("prefixed: %+v; want empty, the reason once", st[0])
	}
	if st[1].State != StateError || strings.Contains(st[1].Reason, "\n") ||
		!strings.Contains(st[1].Reason, "exited before the plugin handshake (exit status 1); the last line it wrote on stderr: ModuleNotFoundError: No module named 'no_such_module_for_credhost'") {
		t.Errorf("traceback: %+v", st[1])
	}
	start := time.Now()
	h.Close()
	took := time.Since(start)
	t.Logf("Close took %v", took)
	if took >= 1900*time.Millisecond {
		t.Errorf("Close took %v; want no 2 s wait", took)
	}
	out := logs.String()
	for _, want := range []string{"[WARN]  pyfound: plain line from a python plugin\n", "[WARN]  pytraceback: Traceback (most recent call last):\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"failed to exit gracefully", "[ERROR]", "stdio"} {
		if strings.Contains(out, bad) {
			t.Errorf("logs have %q:\n%s", bad, out)
		}
	}
}

// TestMalformedLogLinesDoNotCrashTheHost: go-plugin read a plugin's stderr
// with an unchecked type assertion, so {"@message": 5} on a plugin's
// stderr panicked the host. Each such line is now logged as it is, or as
// plain text.
func TestMalformedLogLinesDoNotCrashTheHost(t *testing.T) {
	t.Parallel()
	h, logs := newLevelHost(t, rawConfig("badjson,found"), hclog.Warn)
	if _, err := h.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.Close()
	out := logs.String()
	for _, want := range []string{
		`[WARN]  p0: {"@message": 5, "@level": "warn"}` + "\n",
		"[WARN]  p0: level is a number\n",
		"[WARN]  p0: timestamp is a number\n",
		`[WARN]  p0: nested: obj="{\"k\":\"v\u001b[2J\"}"` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

// TestGoPluginPrintsAreHeard: a Go plugin's plain print on os.Stderr after
// it serves travels over go-plugin's stdio service, which the host used to
// discard; it is logged at warn like any plain stderr line.
func TestGoPluginPrintsAreHeard(t *testing.T) {
	t.Parallel()
	h, logs := newLevelHost(t, testConfig(true, "printstderr"), hclog.Warn)
	if _, err := h.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The line travels on its own stream, after the call's answer.
	want := "[WARN]  p0: plain from a go plugin\n"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), want) {
		t.Errorf("logs lack %q:\n%s", want, logs)
	}
}

// TestTokensLoggedBeforeTheAnswerAreRedacted: a plugin that logs the
// token it is about to return, before the answer that tells the host the
// token, must not get it into the host's log: the lines written during a
// call are held until its answer has been read, then filtered.
func TestTokensLoggedBeforeTheAnswerAreRedacted(t *testing.T) {
	t.Parallel()
	h, logs := newLevelHost(t, testConfig(true, "leakstderr"), hclog.Trace)
	res, err := h.Token(context.Background())
	if err != nil || res.Credential.AccessToken != "tok-secret-LEAKEDLEAKED" {
		t.Fatalf("Token: %v, %v", res, err)
	}
	for deadline := time.Now().Add(5 * time.Second); strings.Count(logs.String(), "p0: read") < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	h.Close()
	out := logs.String()
	if strings.Count(out, "p0: read") < 2 {
		t.Fatalf("the plugin's two lines were not logged:\n%s", out)
	}
	for _, secret := range []string{"tok-secret-LEAKEDLEAKED", "refresh-tok-LEAKEDLEAKED", "LEAKEDLEAKED"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs show %q:\n%s", secret, out)
		}
	}
}

// TestCloseDuringAWalkLeavesNoPlugin: Close while a walk that its caller
// gave up on is still starting a plugin waits for that walk, so the
// plugin it started is ended too; calls after Close fail with ErrClosed.
func TestCloseDuringAWalkLeavesNoPlugin(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	h, _ := newLevelHost(t, rawConfig("found,pid="+pidFile), hclog.Info)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := h.Token(ctx); err == nil {
		t.Skip("the plugin started within 5ms: nothing was left under way to test")
	}
	h.Close()
	// A walk left running past Close would start the plugin after it:
	// give such a start time to happen, then the plugin must not run.
	time.Sleep(2 * time.Second)
	if raw, err := os.ReadFile(pidFile); err == nil {
		pid, _ := strconv.Atoi(string(raw))
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("plugin process %d still there 2s after Close (kill 0: %v)", pid, err)
		}
	}
	if _, err := h.Token(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Token after Close: %v; want ErrClosed", err)
	}
	if _, err := h.Refresh(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Refresh after Close: %v; want ErrClosed", err)
	}
	if st := h.Status(context.Background()); len(st) != 1 || st[0].State != StateError || !strings.Contains(st[0].Reason, "closed") {
		t.Errorf("Status after Close: %+v; want an error saying the host is closed", st)
	}
}

// TestCloseCutsAWalkShortAndStartsNoMore: Close during a walk over a
// chain of empty plugin processes ends the walk before it starts the rest
// of the chain, and a caller still waiting on it gets ErrClosed, not "no
// credential" (which reads as a logout).
func TestCloseCutsAWalkShortAndStartsNoMore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 6
	var opts []string
	for i := range n {
		opts = append(opts, "pid="+filepath.Join(dir, strconv.Itoa(i)))
	}
	h, _ := newLevelHost(t, rawConfig(opts...), hclog.Error)
	errc := make(chan error, 1)
	go func() {
		_, err := h.Token(context.Background())
		errc <- err
	}()
	// Let the walk start its first plugins, then close.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "0")); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Token waiting on the walk Close cut short: %v; want ErrClosed", err)
	}
	started := 0
	for i := range n {
		if _, err := os.Stat(filepath.Join(dir, strconv.Itoa(i))); err == nil {
			started++
		}
	}
	if started == n {
		t.Errorf("all %d plugins of the chain were started; want the walk to stop at Close", n)
	}
}
