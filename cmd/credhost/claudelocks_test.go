package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// These tests hold Claude Code's credential locks with the library Claude
// Code takes them with (proper-lockfile, from $CREDHOST_NODE_MODULES, run
// by testdata/claudelocks.js with Claude Code's options) against the real
// credhost binary and the real file store. They skip without Node.

// nodeLocks runs testdata/claudelocks.js with args; it skips the test when
// $CREDHOST_NODE_MODULES or node is missing.
func nodeLocks(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	modules := os.Getenv("CREDHOST_NODE_MODULES")
	if modules == "" {
		t.Skip("CREDHOST_NODE_MODULES is not set (.ci/test sets it)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "claudelocks.js"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	return cmd
}

// nodeOutput runs claudelocks.js to the end and returns its stdout.
func nodeOutput(t *testing.T, args ...string) string {
	t.Helper()
	cmd := nodeLocks(t, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", args[0], err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// nodeHolder is a Node process holding Claude Code's refresh locks.
type nodeHolder struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	out   *bufio.Reader
}

func holdInNode(t *testing.T, dir string) *nodeHolder {
	t.Helper()
	return holdLocksInNode(t, "hold", dir)
}

// holdLocksInNode starts claudelocks.js in a hold mode ("hold": the
// refresh locks; "holdwrite": the write lock) and waits until it holds.
func holdLocksInNode(t *testing.T, mode, dir string) *nodeHolder {
	t.Helper()
	cmd := nodeLocks(t, mode, dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	h := &nodeHolder{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	if line, err := h.out.ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("node holder: %q, %v; want locked", line, err)
	}
	return h
}

// release makes the holder release its locks and waits for it to exit.
func (h *nodeHolder) release(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if line, err := h.out.ReadString('\n'); err != nil || line != "released\n" {
		t.Errorf("node holder: %q, %v; want released", line, err)
	}
	h.cmd.Wait()
}

type lockCheck struct{ Refresh, Legacy bool }

func checkInNode(t *testing.T, dir string) lockCheck {
	t.Helper()
	var c lockCheck
	if err := json.Unmarshal([]byte(nodeOutput(t, "check", dir)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCredhostWaitsForClaudeCodesLock: while a Node process holds Claude
// Code's refresh locks, `credhost token` sends no refresh; once they are
// released, it refreshes.
func TestCredhostWaitsForClaudeCodesLock(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	s.loginFile(srv, time.Now().Add(-time.Minute))
	dir := filepath.Join(s.home, ".claude")
	h := holdInNode(t, dir)

	cmd := exec.Command(credhostBin, "token", "--json")
	cmd.Env = s.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := srv.Arrived(); n != 0 {
		t.Errorf("%d token requests while Claude Code's lock was held; want none", n)
	}
	h.release(t)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("credhost token: %v\n%s", err, stderr.String())
	}
	var got tokenJSON
	json.Unmarshal(stdout.Bytes(), &got)
	if !got.Refreshed || srv.Requests() != 1 || srv.Reuses() != 0 {
		t.Errorf("refreshed %v, %d requests, %d reuses; want one refresh after the release\n%s", got.Refreshed, srv.Requests(), srv.Reuses(), stderr.String())
	}
}

// TestCredhostSavesOnlyOutsideClaudeCodesWriteLock: while a Node process
// holds Claude Code's write lock (proper-lockfile on
// <dir>/.storage-write, whose directory is <dir>/.storage-write.lock),
// credhost may refresh but does not write the file; once the lock is
// released, it saves.
func TestCredhostSavesOnlyOutsideClaudeCodesWriteLock(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	old, _ := s.loginFile(srv, time.Now().Add(-time.Minute))
	dir := filepath.Join(s.home, ".claude")
	h := holdLocksInNode(t, "holdwrite", dir)

	cmd := exec.Command(credhostBin, "token", "--json")
	cmd.Env = s.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for srv.Requests() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if got := s.readCredentials().Access; got != old {
		t.Errorf("credhost wrote the credentials file while Claude Code held its write lock")
	}
	h.release(t)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("credhost token: %v\n%s", err, stderr.String())
	}
	var got tokenJSON
	json.Unmarshal(stdout.Bytes(), &got)
	if !got.Refreshed || s.readCredentials().Access != got.AccessToken {
		t.Errorf("refreshed %v, saved %v; want the refreshed token saved after the release\n%s", got.Refreshed, s.readCredentials().Access == got.AccessToken, stderr.String())
	}
}

// TestClaudeCodeWaitsForCredhostsLock: while credhost refreshes (its token
// request in flight), proper-lockfile sees Claude Code's locks held and
// its lock with retries fails ELOCKED; afterwards they are free.
func TestClaudeCodeWaitsForCredhostsLock(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	// Long enough for Node to start and probe on a busy machine, within
	// the default refresh.timeout (10s).
	srv.SetDelay(6 * time.Second)
	s.loginFile(srv, time.Now().Add(-time.Minute))
	dir := filepath.Join(s.home, ".claude")

	cmd := exec.Command(credhostBin, "token")
	cmd.Env = s.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Arrived() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var probe struct {
		Refresh, Legacy bool
		Trylock         string
	}
	if err := json.Unmarshal([]byte(nodeOutput(t, "probe", dir)), &probe); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		t.Fatalf("credhost finished before Node's probe did; the machine is too slow for this test's 6 s window")
	default:
	}
	if !probe.Refresh || !probe.Legacy || probe.Trylock != "ELOCKED" {
		t.Errorf("while credhost refreshes, proper-lockfile sees %+v; want both locks held and lock with retries ELOCKED", probe)
	}
	<-exited
	if cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("credhost token: exit %d", cmd.ProcessState.ExitCode())
	}
	if c := checkInNode(t, dir); c.Refresh || c.Legacy {
		t.Errorf("after credhost's refresh, proper-lockfile check: %+v; want both locks free", c)
	}
	if out := nodeOutput(t, "trylock", dir); out != "locked" {
		t.Errorf("Node's lock after credhost's refresh: %s; want locked", out)
	}
}

// TestStaleClaudeCodeLockIsReclaimed: a Node process killed while holding
// Claude Code's locks leaves their directories; once their mtime is older
// than the 10 s stale time (set back here, not waited for), credhost takes
// them over and refreshes at once.
func TestStaleClaudeCodeLockIsReclaimed(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	s.loginFile(srv, time.Now().Add(-time.Minute))
	dir := filepath.Join(s.home, ".claude")
	h := holdInNode(t, dir)
	h.cmd.Process.Kill()
	h.cmd.Wait()
	old := time.Now().Add(-11 * time.Second)
	for _, p := range []string{filepath.Join(dir, ".oauth_refresh.lock"), dir + ".lock"} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatalf("the killed holder left no lock at %s: %v", p, err)
		}
	}
	start := time.Now()
	r := s.run("token", "--json")
	var got tokenJSON
	json.Unmarshal([]byte(r.stdout), &got)
	if r.code != 0 || !got.Refreshed || srv.Requests() != 1 {
		t.Fatalf("exit %d, refreshed %v, %d requests; want a refresh\n%s", r.code, got.Refreshed, srv.Requests(), r.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v; the stale lock should be taken over at once", d)
	}
	if c := checkInNode(t, dir); c.Refresh || c.Legacy {
		t.Errorf("after the refresh: %+v; want both locks free", c)
	}
}

// TestStormWithClaudeCodeClients: credhost processes and Node processes
// that refresh as Claude Code does (its locks, re-read under them, refresh
// only the expiring token, write under its write lock) all start at once
// on one expiring file: exactly one refresh reaches the rotating endpoint
// and no refresh token is presented twice.
func TestStormWithClaudeCodeClients(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s, srv := newRefreshSandbox(t, mode)
			// Slow enough that every process has started (Node takes
			// up to a second on a busy machine) and read the file
			// before the first refresh is saved.
			srv.SetDelay(3 * time.Second)
			old, _ := s.loginFile(srv, time.Now().Add(-time.Minute))
			dir := filepath.Join(s.home, ".claude")
			const n = 4
			// The Node clients start first and say when they are loaded
			// (Node takes a second or more on a busy machine); then all
			// begin at once, so a Node client reads the expiring file
			// while credhost's first refresh is in flight unless the
			// locks keep it out.
			var wg sync.WaitGroup
			start := make(chan struct{})
			outs, errs := make([]string, 2*n), make([]string, 2*n)
			for i := n; i < 2*n; i++ {
				cmd := nodeLocks(t, "client", dir, srv.TokenURL(), old)
				stdin, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { cmd.Process.Kill() })
				out := bufio.NewReader(stdout)
				if line, err := out.ReadString('\n'); line != "ready\n" {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("node client: %q, %v; want ready\n%s", line, err, stderr.String())
				}
				wg.Go(func() {
					<-start
					stdin.Close()
					rest, _ := io.ReadAll(out)
					if err := cmd.Wait(); err != nil {
						errs[i] = err.Error() + "\n" + stderr.String()
					}
					outs[i] = strings.TrimSpace(string(rest))
				})
			}
			for i := range n {
				cmd := exec.Command(credhostBin, "token")
				cmd.Env = s.env
				wg.Go(func() {
					var stdout, stderr bytes.Buffer
					cmd.Stdout, cmd.Stderr = &stdout, &stderr
					<-start
					if err := cmd.Run(); err != nil {
						errs[i] = err.Error() + "\n" + stderr.String()
					}
					outs[i] = strings.TrimSpace(stdout.String())
				})
			}
			close(start)
			wg.Wait()
			if srv.Requests() != 1 || srv.Reuses() != 0 {
				t.Errorf("%d token requests, %d reuses; want exactly 1 and none", srv.Requests(), srv.Reuses())
			}
			saved := s.readCredentials().Access
			if saved == old {
				t.Fatalf("the file still holds the expiring token")
			}
			for i := range 2 * n {
				switch {
				case errs[i] != "":
					t.Errorf("process %d failed: %s", i, errs[i])
				case i < n && outs[i] != saved:
					t.Errorf("credhost %d did not print the saved token", i)
				case i >= n && outs[i] != "refreshed" && outs[i] != "not_needed":
					t.Errorf("node client %d: %q", i, outs[i])
				}
			}
		})
	}
}

var _ = oauthtest.Normal
