//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credhost/credhost/host/daemon"
	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// The daemon's tests: they signal it and run a client as another uid.

// TestServeAnswersTheAPI: every path answers as the README shows, and
// errors are JSON with the CLI's exit code.
func TestServeAnswersTheAPI(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	access, _ := s.loginFile(srv, time.Now().Add(3*time.Hour))
	d := s.serve()

	tok := d.token()
	if tok.AccessToken != access || tok.Provider != "file" || tok.Fingerprint != sdk.Fingerprint(access) || tok.ExpiresAt == nil || tok.Degraded {
		t.Errorf("GET /v1/token: provider %q fingerprint %q expires %v degraded %v; want the file's token", tok.Provider, tok.Fingerprint, tok.ExpiresAt, tok.Degraded)
	}
	var st daemon.Status
	if code, _ := d.call(http.MethodGet, daemon.PathStatus, "", &st); code != 200 || len(st.Providers) == 0 || st.Providers[len(st.Providers)-1].Fingerprint != tok.Fingerprint {
		t.Errorf("GET /v1/status: %d %+v", code, st)
	}
	var h daemon.Health
	if code, _ := d.call(http.MethodGet, daemon.PathHealth, "", &h); code != 200 || h.Status != "ok" || h.PID != d.cmd.Process.Pid || h.Config != "embedded default" {
		t.Errorf("GET /v1/health: %d %+v", code, h)
	}
	if code, _ := d.call(http.MethodGet, daemon.PathMetrics, "", nil); code != 200 {
		t.Errorf("GET /metrics: %d", code)
	}
	errs := map[string]struct {
		method, path, body string
		status             int
		code               string
	}{
		"wrong method":   {http.MethodPost, daemon.PathToken, "", 405, daemon.CodeBadRequest},
		"unknown path":   {http.MethodGet, "/v2/token", "", 404, daemon.CodeBadRequest},
		"malformed body": {http.MethodPost, daemon.PathRefresh, "{", 400, daemon.CodeBadRequest},
	}
	for name, tc := range errs {
		if status, e := d.call(tc.method, tc.path, tc.body, nil); status != tc.status || e.Code != tc.code || e.ExitCode != 2 || e.Error == "" {
			t.Errorf("%s: %d %+v; want %d %s", name, status, e, tc.status, tc.code)
		}
	}
	if srv.Requests() != 0 {
		t.Errorf("%d token requests for a token valid for hours; want 0", srv.Requests())
	}
}

// TestServeRefusesARequestFromAnotherChain: a request naming a chain that
// is not the daemon's (another config, or an environment that sets a
// variable the chain reads) gets 409, never the daemon's token; one naming
// the daemon's chain, or none, is served.
func TestServeRefusesARequestFromAnotherChain(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	access, _ := s.loginFile(srv, time.Now().Add(3*time.Hour))
	d := s.serve()
	var h daemon.Health
	d.call(http.MethodGet, daemon.PathHealth, "", &h)
	if h.Chain == "" {
		t.Fatal("GET /v1/health reports no chain")
	}
	ask := func(method, path, chain string) (int, string, daemon.Error) {
		req, _ := http.NewRequest(method, "http://credhost"+path, nil)
		if chain != "" {
			req.Header.Set(daemon.ChainHeader, chain)
		}
		resp, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var e daemon.Error
		json.Unmarshal(data, &e)
		return resp.StatusCode, string(data), e
	}
	for _, ep := range []struct{ method, path string }{{http.MethodGet, daemon.PathToken}, {http.MethodPost, daemon.PathRefresh}, {http.MethodGet, daemon.PathStatus}} {
		status, body, e := ask(ep.method, ep.path, "another-chain")
		if status != http.StatusConflict || e.Code != daemon.CodeChainMismatch || e.ExitCode != 2 || strings.Contains(body, access) || strings.Contains(body, sdk.Fingerprint(access)) {
			t.Errorf("%s %s from another chain: %d %s; want 409 chain_mismatch and nothing of the token", ep.method, ep.path, status, body)
		}
	}
	if status, body, _ := ask(http.MethodGet, daemon.PathToken, h.Chain); status != http.StatusOK || !strings.Contains(body, access) {
		t.Errorf("GET /v1/token from the daemon's own chain: %d", status)
	}
	if srv.Requests() != 0 {
		t.Errorf("%d token requests; want none (a refused refresh sends nothing)", srv.Requests())
	}
}

// TestServeNoCredentialIs404WithExitCode1: an empty chain answers as
// `credhost token` exits.
func TestServeNoCredentialIs404WithExitCode1(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	d := s.serve()
	status, e := d.call(http.MethodGet, daemon.PathToken, "", nil)
	if status != 404 || e.Code != daemon.CodeNoCredential || e.ExitCode != 1 || !strings.Contains(e.Error, "to fix:") {
		t.Errorf("GET /v1/token with nothing anywhere: %d %+v; want 404 no_credential, exit 1 and the hint", status, e)
	}
}

// TestServeConcurrentClientsOnAnExpiredTokenShareOneRefresh: 200 clients
// that ask at once for an expired token cause one token request, no reuse
// of a refresh token, and all get the same new token.
func TestServeConcurrentClientsOnAnExpiredTokenShareOneRefresh(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		// No re-read, no login yet: the clients, not the daemon's own
		// loop, meet the expired token.
		d := s.serve("--staleness", "1h")
		old, _ := s.loginFile(srv, time.Now().Add(-time.Minute))
		srv.SetDelay(200 * time.Millisecond) // all 200 arrive during the refresh
		const clients = 200
		got := make([]daemon.Token, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() { d.call(http.MethodGet, daemon.PathToken, "", &got[i]) })
		}
		wg.Wait()
		if srv.Requests() != 1 || srv.Reuses() != 0 {
			t.Errorf("%d token requests, %d reuses; want 1 and 0", srv.Requests(), srv.Reuses())
		}
		st := s.readCredentials()
		for i, tok := range got {
			if tok.AccessToken != st.Access || tok.AccessToken == old || tok.Degraded {
				t.Fatalf("client %d got %q (degraded %v); want the one new token, saved", i, tok.Fingerprint, tok.Degraded)
			}
		}
	})
}

// TestServeRefreshStormWithOneRejectedFingerprintIsOneRefresh: twenty
// clients that saw the same token rejected ask for a refresh at once: one
// token request, and all get the new token. A late one naming the old
// fingerprint gets the new token without another request.
func TestServeRefreshStormWithOneRejectedFingerprintIsOneRefresh(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		old, _ := s.loginFile(srv, time.Now().Add(3*time.Hour))
		d := s.serve("--staleness", "1h")
		if tok := d.token(); tok.AccessToken != old {
			t.Fatalf("GET /v1/token: %s; want the login's token", tok.Fingerprint)
		}
		srv.SetDelay(200 * time.Millisecond)
		body := fmt.Sprintf(`{"rejected": %q}`, sdk.Fingerprint(old))
		const clients = 20
		got := make([]daemon.Token, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				if status, e := d.call(http.MethodPost, daemon.PathRefresh, body, &got[i]); status != 200 {
					t.Errorf("POST /v1/refresh: %d %+v", status, e)
				}
			})
		}
		wg.Wait()
		if srv.Requests() != 1 || srv.Reuses() != 0 {
			t.Errorf("%d token requests, %d reuses; want 1 and 0", srv.Requests(), srv.Reuses())
		}
		st := s.readCredentials()
		for i, tok := range got {
			if tok.AccessToken != st.Access || tok.AccessToken == old {
				t.Fatalf("client %d got %s; want the new token, saved", i, tok.Fingerprint)
			}
		}
		var late daemon.Token
		d.call(http.MethodPost, daemon.PathRefresh, body, &late)
		if late.AccessToken != st.Access || srv.Requests() != 1 {
			t.Errorf("a late refresh naming the old token: %s, %d token requests; want the current token and no request", late.Fingerprint, srv.Requests())
		}
		// Without a fingerprint it is a plain forced refresh.
		var forced daemon.Token
		d.call(http.MethodPost, daemon.PathRefresh, "", &forced)
		if !forced.Refreshed || forced.AccessToken == st.Access || srv.Requests() != 2 {
			t.Errorf("POST /v1/refresh with no body: refreshed %v, %d token requests; want a new token and a second request", forced.Refreshed, srv.Requests())
		}
	})
}

// TestServeRefreshesAheadWithNobodyAsking: with short-lived tokens, the
// store holds a new token before the old one expires, and no client asked.
func TestServeRefreshesAheadWithNobodyAsking(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newShortLivedSandbox(t, mode)
		expires := time.Now().Add(shortLife)
		old, _ := s.loginFile(srv, expires)
		d := s.serve("--staleness", "1h")
		deadline := expires.Add(-200 * time.Millisecond)
		for s.readCredentials().Access == old {
			if time.Now().After(deadline) {
				t.Fatalf("the store still holds the old token shortly before it expires; daemon's stderr:\n%s", d.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// And again with the next token: the schedule follows the new
		// expiry.
		next := s.readCredentials()
		ms, _ := next.ExpiresAt.Int64()
		deadline = time.UnixMilli(ms).Add(-200 * time.Millisecond)
		for s.readCredentials().Access == next.Access {
			if time.Now().After(deadline) {
				t.Fatalf("the second token was not refreshed ahead of its expiry; stderr:\n%s", d.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if srv.Reuses() != 0 {
			t.Errorf("%d reuses; want 0", srv.Reuses())
		}
		if tok := d.token(); tok.AccessToken != s.readCredentials().Access {
			t.Errorf("GET /v1/token serves %s, not the store's new token", tok.Fingerprint)
		}
	})
}

// TestServeServesAnOutsideRewriteWithinTheStaleness: a new login written
// to the store behind the daemon (Claude Code's /login) is served within
// the --staleness bound.
func TestServeServesAnOutsideRewriteWithinTheStaleness(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	s.loginFile(srv, time.Now().Add(3*time.Hour))
	d := s.serve("--staleness", "500ms")
	d.token()
	written := time.Now()
	fresh, _ := s.loginFile(srv, time.Now().Add(5*time.Hour))
	for d.token().AccessToken != fresh {
		// The bound, and generous room for a loaded machine.
		if time.Since(written) > 500*time.Millisecond+5*time.Second {
			t.Fatalf("the new login is not served %s after it was written; want within the staleness", time.Since(written).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if srv.Requests() != 0 {
		t.Errorf("%d token requests; want 0 (nothing needed a refresh)", srv.Requests())
	}
	// A logout (the file gone) stops the old token being served.
	os.Remove(filepath.Join(s.home, ".claude", ".credentials.json"))
	for {
		status, _ := d.call(http.MethodGet, daemon.PathToken, "", nil)
		if status == http.StatusNotFound {
			break
		}
		if time.Since(written) > 20*time.Second {
			t.Fatalf("the token is still served after the store was emptied")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeOneDaemonPerSocketAndReclaimAfterKill: a second daemon on the
// same socket exits 2 naming the first one's pid; after the first is
// killed (its socket file left behind), a new one takes the socket over.
func TestServeOneDaemonPerSocketAndReclaimAfterKill(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	access, _ := s.loginFile(srv, time.Now().Add(3*time.Hour))
	first := s.serve()

	second := s.startServe(first.socket)
	if code := second.wait(); code != 2 || !strings.Contains(second.stderr.String(), fmt.Sprintf("pid %d", first.cmd.Process.Pid)) {
		t.Errorf("second serve: exit %d; want 2 and the first one's pid; stderr:\n%s", code, second.stderr)
	}
	if first.token().AccessToken != access {
		t.Error("the first daemon stopped serving after the second was refused")
	}

	first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait()
	if st, err := os.Lstat(first.socket); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("after SIGKILL the socket file is gone (%v); the test needs it left behind", err)
	}
	third := s.startServe(first.socket)
	third.waitReady()
	if third.token().AccessToken != access {
		t.Error("the new daemon does not serve the token")
	}
}

// TestServeTermFinishesARefreshInFlightAndRemovesTheSocket: SIGTERM while a
// refresh is under way: the client gets its answer, the new token is
// saved, the socket is gone and the daemon exits 0.
func TestServeTermFinishesARefreshInFlightAndRemovesTheSocket(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		old, _ := s.loginFile(srv, time.Now().Add(3*time.Hour))
		d := s.serve("--staleness", "1h")
		srv.SetDelay(1500 * time.Millisecond)
		answered := make(chan daemon.Token)
		go func() {
			var tok daemon.Token
			d.call(http.MethodPost, daemon.PathRefresh, "", &tok)
			answered <- tok
		}()
		for srv.Arrived() == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		d.cmd.Process.Signal(syscall.SIGTERM)
		tok := <-answered
		if code := d.wait(); code != 0 {
			t.Errorf("exit %d after SIGTERM; want 0; stderr:\n%s", code, d.stderr)
		}
		st := s.readCredentials()
		if tok.AccessToken == "" || tok.AccessToken == old || tok.AccessToken != st.Access {
			t.Errorf("the refresh in flight was not answered and saved: got %q", tok.Fingerprint)
		}
		if _, err := os.Lstat(d.socket); !os.IsNotExist(err) {
			t.Errorf("the socket is still there after SIGTERM: %v", err)
		}
	})
}

// TestServeSocketModesAndRefusedDirectories: the socket is 0600 in a 0700
// directory; a directory others can enter, or owned by someone else, is
// refused with the fix, and exit 2.
func TestServeSocketModesAndRefusedDirectories(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	parent := socketDir(t)
	d := s.startServe(filepath.Join(parent, "made", "credhost.sock"))
	d.waitReady()
	for path, want := range map[string]os.FileMode{filepath.Join(parent, "made"): 0o700, filepath.Join(parent, "made", "credhost.sock"): 0o600} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v; want mode %o", path, st.Mode(), err, want)
		}
	}
	tests := map[string]struct {
		prepare func(dir string) error
		want    string
		root    bool
	}{
		"group and others may enter": {prepare: func(dir string) error { return os.Chmod(dir, 0o755) }, want: "chmod 700 "},
		"owned by another user":      {prepare: func(dir string) error { return os.Chown(dir, 65534, 65534) }, want: "belongs to uid 65534", root: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to give a directory away")
			}
			dir := filepath.Join(socketDir(t), "sock")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := tc.prepare(dir); err != nil {
				t.Fatal(err)
			}
			d := s.startServe(filepath.Join(dir, "credhost.sock"))
			if code := d.wait(); code != 2 || !strings.Contains(d.stderr.String(), dir) || !strings.Contains(d.stderr.String(), tc.want) {
				t.Errorf("serve: exit %d; want 2, naming %s and %q; stderr:\n%s", code, dir, tc.want, d.stderr)
			}
			if _, err := os.Lstat(filepath.Join(dir, "credhost.sock")); !os.IsNotExist(err) {
				t.Errorf("a socket was made in the refused directory")
			}
		})
	}
}

// TestServeRefusesAnotherUser: a client running as another uid that
// reaches the socket (its modes loosened behind the daemon's back) is
// refused with 403, learns nothing, and its uid is logged.
func TestServeRefusesAnotherUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	s, srv := newRefreshSandbox(t, "in-process")
	access, refresh := s.loginFile(srv, time.Now().Add(3*time.Hour))
	d := s.serve()
	// sockget runs as nobody: it must live where nobody can reach it.
	bin, err := os.MkdirTemp("", "chs-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	os.Chmod(bin, 0o755)
	sockget := filepath.Join(bin, "sockget")
	if out, err := exec.Command("go", "build", "-o", sockget, "./testdata/sockget").CombinedOutput(); err != nil {
		t.Fatalf("build sockget: %v\n%s", err, out)
	}
	asNobody := func(path string) (string, error) {
		c := exec.Command(sockget, d.socket, path)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := c.CombinedOutput()
		return string(out), err
	}
	// As the daemon made them, the directory and socket keep nobody out.
	if out, err := asNobody(daemon.PathToken); err == nil {
		t.Errorf("nobody reached the daemon through its private directory:\n%s", out)
	}
	// Loosened by mistake: the peer check is what is left.
	os.Chmod(filepath.Dir(d.socket), 0o711)
	os.Chmod(d.socket, 0o666)
	for _, path := range []string{daemon.PathToken, daemon.PathStatus, daemon.PathHealth, daemon.PathMetrics} {
		out, err := asNobody(path)
		if err != nil || !strings.HasPrefix(out, "403\n") || !strings.Contains(out, daemon.CodeForbidden) {
			t.Errorf("GET %s as nobody: %v\n%s\nwant 403 forbidden", path, err, out)
		}
		for _, secret := range []string{access, refresh, sdk.Fingerprint(access), s.home} {
			if strings.Contains(out, secret) {
				t.Errorf("GET %s as nobody learned something:\n%s", path, out)
			}
		}
	}
	if !strings.Contains(d.stderr.String(), "uid=65534") {
		t.Errorf("the daemon's log does not name the refused uid:\n%s", d.stderr)
	}
	if d.token().AccessToken != access {
		t.Error("the daemon's own user is no longer served")
	}
}

// TestServeReloadsTheConfigOnHangup: SIGHUP loads a changed config; a bad
// one is logged and the previous one kept.
func TestServeReloadsTheConfigOnHangup(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	write := func(name, token string) string {
		path := filepath.Join(s.home, name+".json")
		os.WriteFile(path, []byte(fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q}}`, token)), 0o600)
		return path
	}
	a, b := write("a", "token-a"), write("b", "token-b")
	config := func(path string) string {
		return fmt.Sprintf("version: 1\nproviders:\n  - {name: f, plugin: file, config: {path: %q}}\n", path)
	}
	cfgPath := s.writeConfig(config(a))
	d := s.serve("--config", cfgPath, "--log-level", "info")
	if tok := d.token(); tok.AccessToken != "token-a" {
		t.Fatalf("before the reload: %q", tok.AccessToken)
	}
	s.writeConfig(config(b))
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reloaded config to be served", func() bool { return d.token().AccessToken == "token-b" })

	s.writeConfig("version: 1\nproviders:\n  - {name: f, plugin: file, pth: x}\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the bad config to be logged", func() bool {
		return strings.Contains(d.stderr.String(), "reloading the config failed") && strings.Contains(d.stderr.String(), "credhost.yaml:3")
	})
	if tok := d.token(); tok.AccessToken != "token-b" {
		t.Errorf("after a bad reload: %q; want the previous config's token-b", tok.AccessToken)
	}
}

// TestServeTraceLogsHoldNoToken: at trace level, neither the daemon's log
// nor its plugins' holds a token, through a token, a forced refresh and a
// status.
func TestServeTraceLogsHoldNoToken(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		access, refresh := s.loginFile(srv, time.Now().Add(3*time.Hour))
		d := s.serve("--log-level", "trace")
		d.token()
		var fresh daemon.Token
		d.call(http.MethodPost, daemon.PathRefresh, fmt.Sprintf(`{"rejected": %q}`, sdk.Fingerprint(access)), &fresh)
		d.call(http.MethodGet, daemon.PathStatus, "", nil)
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.wait()
		st := s.readCredentials()
		log := d.stderr.String()
		if !strings.Contains(log, "credential found") {
			t.Errorf("the trace log lacks the 'credential found' line; is the level applied?\n%s", log)
		}
		for _, secret := range []string{access, refresh, st.Access, st.Refresh, fresh.AccessToken} {
			if secret != "" && strings.Contains(log, secret) {
				t.Errorf("the daemon's trace log holds a token:\n%s", log)
			}
		}
	})
}

// TestServeTakesASocketFromTheServiceManager: under socket activation
// (LISTEN_FDS, as systemd hands a socket over) the daemon serves on the
// socket it was given, and leaves it in place when it stops, for the
// service manager to start the next one on; a handed-over socket that
// other users may reach is refused.
func TestServeTakesASocketFromTheServiceManager(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		mode     os.FileMode
		wantCode int
	}{
		"private socket is served": {0o600, 0},
		"open socket is refused":   {0o666, 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, srv := newRefreshSandbox(t, "in-process")
			access, _ := s.loginFile(srv, time.Now().Add(3*time.Hour))
			path := filepath.Join(socketDir(t), "activated.sock")
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			os.Chmod(path, tc.mode)
			f, err := ln.File()
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
			// systemd sets LISTEN_PID to the service's pid: exec keeps the
			// shell's.
			d := &daemonRun{t: t, socket: path, stderr: &syncBuffer{}, done: make(chan struct{}), client: unixClient(path)}
			// The socket handed over wins over --socket.
			d.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve --socket "$1"`, credhostBin, filepath.Join(s.home, "ignored", "credhost.sock"))
			d.cmd.Env, d.cmd.Dir, d.cmd.Stderr = s.env, s.home, d.stderr
			d.cmd.ExtraFiles = []*os.File{f} // descriptor 3
			if err := d.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			go func() {
				d.cmd.Wait()
				d.code = d.cmd.ProcessState.ExitCode()
				close(d.done)
			}()
			t.Cleanup(func() {
				d.cmd.Process.Kill()
				<-d.done
			})
			if tc.wantCode != 0 {
				if code := d.wait(); code != tc.wantCode || !strings.Contains(d.stderr.String(), "SocketMode=0600") {
					t.Errorf("exit %d; want %d and the fix; stderr:\n%s", code, tc.wantCode, d.stderr)
				}
				return
			}
			d.waitReady()
			if tok := d.token(); tok.AccessToken != access {
				t.Errorf("GET /v1/token on the handed-over socket: %s", tok.Fingerprint)
			}
			d.cmd.Process.Signal(syscall.SIGTERM)
			if code := d.wait(); code != 0 {
				t.Errorf("exit %d after SIGTERM; stderr:\n%s", code, d.stderr)
			}
			if _, err := os.Lstat(path); err != nil {
				t.Errorf("the service manager's socket was removed: %v", err)
			}
		})
	}
}

// TestServeRefreshRequestsWaitOutAFailingEndpoint: while the endpoint
// fails, requests naming a token that is not the daemon's (a stale or
// made-up fingerprint, from a confused or hostile client) are answered
// with the token as it is, like GET /v1/token, and do not each send the
// endpoint a refresh.
func TestServeRefreshRequestsWaitOutAFailingEndpoint(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	d := s.serve("--staleness", "1h")
	old, _ := s.loginFile(srv, time.Now().Add(-time.Minute))
	srv.SetMode(oauthtest.ServerError)
	var first daemon.Token
	if status, e := d.call(http.MethodGet, daemon.PathToken, "", &first); status != 200 || !first.Degraded || first.AccessToken != old {
		t.Fatalf("GET /v1/token with a failing endpoint: %d %+v, degraded %v; want the old token, degraded", status, e, first.Degraded)
	}
	const requests = 30
	for i := range requests {
		var tok daemon.Token
		status, e := d.call(http.MethodPost, daemon.PathRefresh, fmt.Sprintf(`{"rejected": "made-up-%d"}`, i), &tok)
		if status != 200 || tok.AccessToken != old || !tok.Degraded {
			t.Fatalf("POST /v1/refresh naming another token: %d %+v, degraded %v; want the daemon's token, degraded", status, e, tok.Degraded)
		}
	}
	// The daemon's own backoff retries (1 s, 2 s, ...) may fall within
	// the requests; one endpoint call per request may not.
	if n := srv.Requests(); n > requests/3 {
		t.Errorf("%d token requests for %d refresh requests naming other tokens while the endpoint fails", n, requests)
	}
}

// TestServeReloadDuringARefreshAheadIsStillOneRefresh: a hangup that
// arrives while the daemon's refresh ahead waits on the endpoint starts a
// second host on the same store; its own first look at the token must
// wait for the refresh under way and adopt it, not send a second one
// (which would reuse the spent refresh token and lose the login).
func TestServeReloadDuringARefreshAheadIsStillOneRefresh(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		old, _ := s.loginFile(srv, time.Now().Add(time.Minute)) // inside the buffer: refreshed at once
		srv.SetDelay(time.Second)
		d := s.serve("--staleness", "1h", "--log-level", "debug")
		waitFor(t, "the refresh ahead to reach the endpoint", func() bool { return srv.Arrived() >= 1 })
		d.cmd.Process.Signal(syscall.SIGHUP)
		deadline := time.Now().Add(20 * time.Second)
		for s.readCredentials().Access == old {
			if time.Now().After(deadline) {
				t.Fatalf("the store still holds the old token; %d token requests; stderr:\n%s", srv.Requests(), d.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // the reloaded host's first look has come and gone
		if srv.Requests() != 1 || srv.Reuses() != 0 {
			t.Errorf("%d token requests, %d reuses; want 1 and 0; stderr:\n%s", srv.Requests(), srv.Reuses(), d.stderr)
		}
		if tok := d.token(); tok.AccessToken != s.readCredentials().Access {
			t.Errorf("after the reload the daemon serves %s, not the store's token", tok.Fingerprint)
		}
		// The refresh succeeded: no line may say it failed.
		if strings.Contains(d.stderr.String(), "failed") {
			t.Errorf("the daemon logged a failure of a refresh that succeeded:\n%s", d.stderr)
		}
	})
}

// TestServeStopsServingAfterALogout: the store's file removed behind the
// daemon (a logout) ends the serving of its token within the staleness
// bound: 404, exit code 1, as `credhost token` would say; the file is not
// written back.
func TestServeStopsServingAfterALogout(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		old, _ := s.loginFile(srv, time.Now().Add(3*time.Hour))
		d := s.serve("--staleness", "100ms")
		if tok := d.token(); tok.AccessToken != old {
			t.Fatalf("before the logout: %s", tok.Fingerprint)
		}
		file := filepath.Join(s.home, ".claude", ".credentials.json")
		if err := os.Remove(file); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the logged-out token to stop being served", func() bool {
			status, e := d.call(http.MethodGet, daemon.PathToken, "", nil)
			return status == http.StatusNotFound && e.ExitCode == 1
		})
		if _, err := os.Lstat(file); err == nil {
			t.Error("the credentials file is back after the logout")
		}
	})
}

// TestServeWarnsOfARefreshAClientAskedForThatFailed: a forced refresh
// that fails answers the client 502 and says so in the daemon's own log
// at the default level, where its operator looks.
func TestServeWarnsOfARefreshAClientAskedForThatFailed(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	d := s.serve("--staleness", "1h")
	s.loginFile(srv, time.Now().Add(time.Hour))
	srv.SetMode(oauthtest.ServerError)
	var tok daemon.Token
	if status, e := d.call(http.MethodPost, daemon.PathRefresh, "", &tok); status != http.StatusBadGateway {
		t.Fatalf("POST /v1/refresh with a failing endpoint: %d %+v; want 502", status, e)
	}
	waitFor(t, "the daemon's warning", func() bool {
		return strings.Contains(d.stderr.String(), "a refresh a client asked for failed")
	})
}
