package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// These tests run `credhost exec` (the real binary) with a real file store
// and the rotating token endpoint, whose tokens here live a few seconds:
// the command outlives several of them.

const (
	shortLife   = 4 * time.Second // what the endpoint grants
	shortBuffer = "2"             // seconds: CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS
)

// newShortLivedSandbox is a sandbox whose endpoint grants shortLife tokens
// and whose buffer is shortBuffer.
func newShortLivedSandbox(t *testing.T, mode string) (*sandbox, *oauthtest.Server) {
	s, srv := newRefreshSandbox(t, mode)
	srv.ExpiresIn = shortLife
	s.setenv("CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS=" + shortBuffer)
	return s, srv
}

// execRun is credhost exec running in the background.
type execRun struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
}

func (s *sandbox) start(args ...string) *execRun {
	s.t.Helper()
	r := &execRun{cmd: exec.Command(credhostBin, args...), done: make(chan struct{})}
	r.cmd.Env, r.cmd.Dir = s.env, s.home
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() {
		r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		close(r.done)
	}()
	s.t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// watch reads the credentials file every few milliseconds until the run
// ends, and returns what it saw when.
func (s *sandbox) watch(r *execRun) []observation {
	var seen []observation
	for {
		select {
		case <-r.done:
			return seen
		case <-time.After(20 * time.Millisecond):
		}
		now := time.Now()
		st := s.readCredentials()
		ms, err := st.ExpiresAt.Int64()
		if err != nil {
			s.t.Fatalf("expiresAt %q: %v", st.ExpiresAt, err)
		}
		seen = append(seen, observation{at: now, expires: time.UnixMilli(ms), access: st.Access})
	}
}

type observation struct {
	at, expires time.Time
	access      string
}

// TestExecKeepsTheStoreFreshWhileTheCommandRuns: a command outlives several
// short-lived tokens; the store is refreshed ahead of each expiry, once per
// token, with no refresh token used twice, and exec ends with the command.
func TestExecKeepsTheStoreFreshWhileTheCommandRuns(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newShortLivedSandbox(t, mode)
		s.loginFile(srv, time.Now().Add(shortLife))
		start := time.Now()
		r := s.start("exec", "--", "sh", "-c", "sleep 9; exit 4")
		seen := s.watch(r)
		ran := time.Since(start)
		if r.code != 4 {
			t.Fatalf("exit %d; want 4, the command's\n%s", r.code, r.stderr.String())
		}
		tokens := map[string]bool{}
		for _, o := range seen {
			tokens[o.access] = true
			// Only while the command surely runs (it sleeps 9s after
			// start): once it has exited, exec refreshes nothing more.
			if o.at.Sub(start) >= 9*time.Second {
				break
			}
			if !o.expires.After(o.at) {
				t.Errorf("at %s the store held a token that had expired %s before: it was not refreshed ahead of expiry",
					o.at.Sub(start).Round(time.Millisecond), o.at.Sub(o.expires).Round(time.Millisecond))
				break
			}
		}
		// A token lives 4s and is refreshed 2s before its expiry: about
		// one refresh every 2s of the command's 9s.
		period := shortLife - 2*time.Second
		most := int(ran/period) + 2
		if n := srv.Requests(); n < 3 || n > most {
			t.Errorf("%d refreshes in %s; want one per token: at least 3, at most %d", n, ran.Round(time.Millisecond), most)
		}
		if len(tokens) < 3 {
			t.Errorf("the store held %d tokens while the command ran; want a fresh one per refresh", len(tokens))
		}
		st := s.readCredentials()
		if srv.Reuses() != 0 || srv.Revoked(st.Refresh) {
			t.Errorf("a refresh token was used twice (%d reuses); the family is revoked", srv.Reuses())
		}
		assertNoTokens(t, r.stderr.String(), seen)
	})
}

// TestExecEndsWithItsCommand: exec does not wait out the token's expiry;
// it ends when the command does, with its status, and refreshes nothing.
func TestExecEndsWithItsCommand(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	s.loginFile(srv, time.Now().Add(time.Hour))
	r := s.start("exec", "--", "sh", "-c", "sleep 0.2; exit 5")
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("exec did not end with its command")
	}
	if r.code != 5 || srv.Arrived() != 0 {
		t.Errorf("exit %d, %d token requests; want 5 and none\n%s", r.code, srv.Arrived(), r.stderr.String())
	}
}

// TestExecNeverRefreshesAnEnterpriseToken: a token from an environment
// variable with no store behind it is passed as it is and never refreshed,
// even while an expiring login sits in the store.
func TestExecNeverRefreshesAnEnterpriseToken(t *testing.T) {
	t.Parallel()
	s, srv := newShortLivedSandbox(t, "in-process")
	s.loginFile(srv, time.Now().Add(shortLife))
	s.setenv("ANTHROPIC_AUTH_TOKEN=" + enterpriseTk)
	out := filepath.Join(s.home, "seen")
	r := s.run("exec", "--", "sh", "-c", `printf %s "$ANTHROPIC_AUTH_TOKEN" > "$1"; sleep 5`, "sh", out)
	if seen, _ := os.ReadFile(out); r.code != 0 || string(seen) != enterpriseTk {
		t.Fatalf("exit %d; the command got %d bytes; want exit 0 and the enterprise token\n%s", r.code, len(seen), r.stderr)
	}
	if n := srv.Arrived(); n != 0 {
		t.Errorf("%d token requests; an enterprise token is never refreshed", n)
	}
}

// TestExecKeepsABorrowedEnvTokenFresh: CLAUDE_CODE_OAUTH_TOKEN holding the
// store's token borrows its expiry; once the store holds the successor, the
// variable (which cannot change while credhost runs) lends nothing more,
// and the store must still be kept fresh: it is what the client re-reads.
func TestExecKeepsABorrowedEnvTokenFresh(t *testing.T) {
	t.Parallel()
	s, srv := newShortLivedSandbox(t, "in-process")
	access, _ := s.loginFile(srv, time.Now().Add(shortLife))
	s.setenv("CLAUDE_CODE_OAUTH_TOKEN=" + access)
	r := s.start("exec", "--", "sh", "-c", "sleep 7")
	seen := s.watch(r)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr.String())
	}
	if n := srv.Requests(); n < 2 || srv.Reuses() != 0 {
		t.Errorf("%d refreshes, %d reuses in 7s of 4s tokens; want at least 2 and none", n, srv.Reuses())
	}
	assertNoTokens(t, r.stderr.String(), seen)
}

// TestExecRetriesAFailedRefresh: a refresh that fails is retried with
// backoff, with a warning that holds no token, until it succeeds.
//
// The failure must meet exec's background refresh, not its first token:
// when credhost starts late (a loaded machine) the token is in the buffer
// already, exec's first token is refreshed before the command starts, and
// a failure there is a degraded token, said as such, not a retry. So the
// endpoint fails only once the command runs (it says so in a file), and
// the token leaves time for that: its background refresh is due 3s after
// the login, or 2s after a first token refreshed at the start.
func TestExecRetriesAFailedRefresh(t *testing.T) {
	t.Parallel()
	s, srv := newShortLivedSandbox(t, "in-process")
	oldAccess, _ := s.loginFile(srv, time.Now().Add(5*time.Second))
	ready := filepath.Join(s.home, "ready")
	r := s.start("exec", "--", "sh", "-c", `echo > "$1"; sleep 8`, "sh", ready)
	// What the store held, and how many requests were answered, when the
	// endpoint began to fail.
	type failingAt struct {
		access   string
		requests int
	}
	failing := make(chan failingAt, 1)
	go func() {
		for {
			if _, err := os.Stat(ready); err == nil {
				break
			}
			select {
			case <-r.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		// No request is in flight: exec starts the command after its
		// first token is saved, and the next refresh is seconds away.
		srv.SetMode(oauthtest.ServerError)
		n := srv.Requests()
		failing <- failingAt{s.readCredentials().Access, n}
		// Requests, not Arrived: a request counts as arrived before it
		// reads the mode, and would then see Normal.
		for srv.Requests() == n {
			select {
			case <-r.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		srv.SetMode(oauthtest.Normal)
	}()
	seen := s.watch(r)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr.String())
	}
	var at failingAt
	select {
	case at = <-failing:
	default:
		t.Fatalf("the command never said it runs\n%s", r.stderr.String())
	}
	stderr := r.stderr.String()
	if !strings.Contains(stderr, "retrying") || !strings.Contains(stderr, "HTTP 500") {
		t.Errorf("stderr does not warn of the failed refresh and the retry:\n%s", stderr)
	}
	if st := s.readCredentials(); st.Access == at.access || srv.Requests() < at.requests+2 || srv.Reuses() != 0 {
		t.Errorf("%d requests (%d before the endpoint failed), %d reuses; want a failed refresh, then the retry refreshing the store, no reuse", srv.Requests(), at.requests, srv.Reuses())
	}
	assertNoTokens(t, stderr, append(seen, observation{access: oldAccess}, observation{access: at.access}))
}

// TestExecHonoursRetryAfter: when the endpoint asks to wait (429 with
// Retry-After: 120), the backoff does not ask again before then.
func TestExecHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	s, srv := newShortLivedSandbox(t, "in-process")
	s.loginFile(srv, time.Now().Add(3*time.Second))
	srv.SetMode(oauthtest.TooManyRequests)
	r := s.run("exec", "--", "sh", "-c", "sleep 6")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if n := srv.Arrived(); n != 1 {
		t.Errorf("%d token requests in 6s after a 429 asking for 120s; want exactly 1", n)
	}
	if !strings.Contains(r.stderr, "retrying") {
		t.Errorf("stderr does not say it will retry:\n%s", r.stderr)
	}
}

func assertNoTokens(t *testing.T, stderr string, seen []observation) {
	t.Helper()
	assertNoSecret(t, "stderr", stderr)
	for _, o := range seen {
		if strings.Contains(stderr, o.access) || strings.Contains(stderr, "test-refresh-") {
			t.Errorf("stderr holds a token:\n%s", stderr)
			return
		}
	}
}

// TestExecFinishesARefreshInFlight: when the command exits while a refresh
// is under way, exec saves its answer before it exits. Abandoning it would
// leave the spent refresh token in the store, and the next refresh would be
// a reuse that revokes the login.
func TestExecFinishesARefreshInFlight(t *testing.T) {
	t.Parallel()
	s, srv := newShortLivedSandbox(t, "in-process")
	_, oldRefresh := s.loginFile(srv, time.Now().Add(3*time.Second))
	srv.SetDelay(2 * time.Second) // the refresh starts at 1s and answers at 3s
	r := s.run("exec", "--", "sh", "-c", "sleep 1.5; exit 3")
	if r.code != 3 {
		t.Fatalf("exit %d; want 3, the command's\n%s", r.code, r.stderr)
	}
	st := s.readCredentials()
	if srv.Requests() != 1 || st.Refresh == oldRefresh || srv.Revoked(st.Refresh) {
		t.Errorf("%d answered refreshes; the store holds the old refresh token: %v; want the refresh finished and saved", srv.Requests(), st.Refresh == oldRefresh)
	}
}
