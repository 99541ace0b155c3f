//go:build unix

package main

import (
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credhost/credhost/host/daemon"
	"github.com/credhost/credhost/host/hosttest"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// These tests run the real `credhost serve` and the real commands against
// it, with a real file store and the rotating token endpoint.

// fallbackBound is how long a command may take when the daemon it finds
// does not answer: its own dial bound (daemonDialBound) plus the direct
// walk, on a machine busy with other tests. Without the bound it would
// wait for as long as the listener hangs.
const fallbackBound = 20 * time.Second

// serveClients starts `credhost serve` (serve_test.go's sandbox.serve)
// with the sandbox's environment as it is now, and points the sandbox's
// later commands at it ($CREDHOST_SOCKET). The daemon's log is shown when
// the test fails.
func (s *sandbox) serveClients() *daemonRun {
	s.t.Helper()
	d := s.serve("--log-level", "debug")
	s.t.Cleanup(func() {
		if s.t.Failed() {
			s.t.Logf("credhost serve's log:\n%s", d.stderr)
		}
	})
	s.setenv(daemon.SocketEnv + "=" + d.socket)
	return d
}

// Debug lines that say which way a command went.
const (
	usedDaemon = "using the daemon"
	wentDirect = "working directly"
)

// timestamp is the start of an hclog text line.
var timestamp = regexp.MustCompile(`(?m)^\S+ \[`)

// comparable is stderr without its debug and info lines (what the process
// did, which the daemon did in its stead and logged there) and timestamps:
// the warnings, errors and messages a user sees by default. What differs
// between two runs a second apart (time left, fingerprints and expiries
// of tokens refreshed separately) is replaced by placeholders.
func comparable(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.Contains(line, "[DEBUG]") && !strings.Contains(line, "[TRACE]") && !strings.Contains(line, "[INFO]") {
			keep = append(keep, line)
		}
	}
	return normalize(timestamp.ReplaceAllString(strings.Join(keep, "\n"), "["))
}

var (
	durations    = regexp.MustCompile(`-?(\d+h)?(\d+m)?\d+(\.\d+)?s\b`)
	fingerprints = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	times        = regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?`)
	seconds      = regexp.MustCompile(`"expires_in_seconds": -?\d+`)
	spaces       = regexp.MustCompile(` +`) // a table's columns widen with what they hold
	accessTokens = regexp.MustCompile(`sk-ant-oat01-[A-Za-z0-9_-]+|at-[A-Za-z0-9_-]+`)
)

func normalize(s string) string {
	s = seconds.ReplaceAllString(s, `"expires_in_seconds": N`)
	s = times.ReplaceAllString(s, "TIME")
	s = durations.ReplaceAllString(s, "DURATION")
	s = fingerprints.ReplaceAllString(s, "FINGERPRINT")
	return spaces.ReplaceAllString(s, " ")
}

// Each command through the daemon prints what it prints working directly,
// on stdout and stderr, and exits with the same code.
func TestCommandsThroughTheDaemonAsDirect(t *testing.T) {
	t.Parallel()
	echo := []string{"exec", "--", "sh", "-c", `printf '%s\n' "$CLAUDE_CODE_OAUTH_TOKEN"`}
	for _, tc := range []struct {
		name string
		// setup logs in (or not) and sets the endpoint's mode; it returns
		// whether the two runs may print different tokens (each refreshed
		// its own).
		setup    func(s *sandbox, srv *oauthtest.Server) (ownTokens bool)
		args     []string
		wantCode int
	}{
		{"token", loggedIn(2 * time.Hour), []string{"token"}, 0},
		{"token --json", loggedIn(2 * time.Hour), []string{"token", "--json"}, 0},
		{"status", loggedIn(2 * time.Hour), []string{"status"}, 0},
		{"status --json", loggedIn(2 * time.Hour), []string{"status", "--json"}, 0},
		{"exec", loggedIn(2 * time.Hour), echo, 0},
		{"refresh", loggedInRefreshing(2 * time.Hour), []string{"refresh"}, 0},
		{"refresh --json", loggedInRefreshing(2 * time.Hour), []string{"refresh", "--json"}, 0},
		{"no credential: token", noLogin, []string{"token"}, exitNoCredential},
		{"no credential: exec", noLogin, echo, exitNoCredential},
		{"no credential: refresh", noLogin, []string{"refresh"}, exitNoCredential},
		{"no credential: status", noLogin, []string{"status"}, 0},
		{"failed refresh: refresh", failingEndpoint(2 * time.Hour), []string{"refresh"}, exitRefreshFailed},
		{"failed refresh: degraded token", failingEndpoint(2 * time.Minute), []string{"token"}, 0},
		{"failed refresh: degraded token --json", failingEndpoint(2 * time.Minute), []string{"token", "--json"}, 0},
		{"failed refresh: token --strict", failingEndpoint(2 * time.Minute), []string{"token", "--strict"}, exitRefreshFailed},
		{"failed refresh: exec --strict", failingEndpoint(2 * time.Minute), append([]string{"exec", "--strict"}, echo[1:]...), exitRefreshFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv := newRefreshSandbox(t, "in-process")
			ownTokens := tc.setup(s, srv)
			s.serveClients()
			// Flags go right after the command's name: exec's end at its
			// command.
			args := func(extra ...string) []string {
				return append(append([]string{tc.args[0], "--log-level", "debug"}, extra...), tc.args[1:]...)
			}
			via := s.run(args()...)
			direct := s.run(args("--no-daemon")...)
			if !strings.Contains(via.stderr, usedDaemon) || strings.Contains(via.stderr, wentDirect) {
				t.Fatalf("%v did not go through the daemon; stderr:\n%s", tc.args, via.stderr)
			}
			if !strings.Contains(direct.stderr, "--no-daemon: working directly") {
				t.Errorf("%v --no-daemon did not say it works directly; stderr:\n%s", tc.args, direct.stderr)
			}
			if via.code != tc.wantCode || direct.code != tc.wantCode {
				t.Errorf("exit %d through the daemon, %d directly; want %d\nthrough the daemon:\n%s\ndirectly:\n%s", via.code, direct.code, tc.wantCode, via.stderr, direct.stderr)
			}
			vo, do := normalize(via.stdout), normalize(direct.stdout)
			if ownTokens {
				vo, do = accessTokens.ReplaceAllString(vo, "TOKEN"), accessTokens.ReplaceAllString(do, "TOKEN")
			}
			if vo != do {
				t.Errorf("stdout through the daemon:\n%s\ndirectly:\n%s", via.stdout, direct.stdout)
			}
			if ve, de := comparable(via.stderr), comparable(direct.stderr); ve != de {
				t.Errorf("stderr (but debug lines) through the daemon:\n%s\ndirectly:\n%s", ve, de)
			}
		})
	}
}

// loggedIn writes a login that expires in d; nothing is refreshed.
func loggedIn(d time.Duration) func(*sandbox, *oauthtest.Server) bool {
	return func(s *sandbox, srv *oauthtest.Server) bool {
		s.loginFile(srv, time.Now().Add(d))
		return false
	}
}

// loggedInRefreshing writes a login that expires in d, and the runs
// refresh it, each its own.
func loggedInRefreshing(d time.Duration) func(*sandbox, *oauthtest.Server) bool {
	return func(s *sandbox, srv *oauthtest.Server) bool {
		s.loginFile(srv, time.Now().Add(d))
		return true
	}
}

// failingEndpoint writes a login that expires in d, and the token endpoint
// fails every refresh.
func failingEndpoint(d time.Duration) func(*sandbox, *oauthtest.Server) bool {
	return func(s *sandbox, srv *oauthtest.Server) bool {
		s.loginFile(srv, time.Now().Add(d))
		srv.SetMode(oauthtest.ServerError)
		return false
	}
}

func noLogin(*sandbox, *oauthtest.Server) bool { return false }

// A daemon that is gone (its socket file left behind) or hangs costs a
// command no more than the dial bound: it works directly and says why.
func TestTokenFallsBackFromADaemonThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		socket func(t *testing.T) string
	}{
		{"a dead socket", func(t *testing.T) string {
			p := filepath.Join(socketDir(t), "dead.sock")
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false) // as a killed daemon leaves it
			l.Close()
			return p
		}},
		{"a hung listener", func(t *testing.T) string {
			p := filepath.Join(socketDir(t), "hung.sock")
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return p // never accepted: a connection waits in the backlog, unanswered
		}},
		{"a listener that accepts and never answers", func(t *testing.T) string {
			p := filepath.Join(socketDir(t), "mute.sock")
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					defer c.Close()
				}
			}()
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.writeCredentials(validCredentials(time.Now().Add(2 * time.Hour)))
			s.setenv(daemon.SocketEnv + "=" + tc.socket(t))
			start := time.Now()
			r := s.run("token", "--log-level", "debug")
			took := time.Since(start)
			if r.code != 0 || r.stdout != fileAccess+"\n" {
				t.Fatalf("token: exit %d, stdout %q; want the file's token\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "no daemon to use; working directly") {
				t.Errorf("no debug line says why it works directly; stderr:\n%s", r.stderr)
			}
			if took > fallbackBound {
				t.Errorf("token took %v; want it to give up on the daemon within %v", took, daemonDialBound)
			}
		})
	}
}

// A caller whose chain is not the daemon's (its environment sets a
// variable the chain reads, or its config differs) works directly and gets
// its own token, never the daemon's; a caller with the daemon's chain is
// served by it.
func TestAnotherChainWorksDirectly(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.writeCredentials(validCredentials(time.Now().Add(2 * time.Hour)))
	other := s.writeConfig("version: 1\nproviders:\n  - name: mine\n    plugin: env\n    config: {var: MY_TOKEN}\n")
	s.serveClients()
	base := s.env

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
		via  bool
	}{
		{name: "the daemon's chain", want: fileAccess, via: true},
		{name: "its own ANTHROPIC_AUTH_TOKEN", env: []string{"ANTHROPIC_AUTH_TOKEN=" + enterpriseTk}, want: enterpriseTk},
		{name: "its own CLAUDE_CODE_OAUTH_TOKEN", env: []string{"CLAUDE_CODE_OAUTH_TOKEN=" + oauthEnvTok}, want: oauthEnvTok},
		{name: "another Claude config directory", env: []string{"CLAUDE_CONFIG_DIR=" + filepath.Join(s.home, "nowhere"), "ANTHROPIC_AUTH_TOKEN=" + enterpriseTk}, want: enterpriseTk},
		{name: "its own config", env: []string{"MY_TOKEN=" + oauthEnvTok}, args: []string{"--config", other}, want: oauthEnvTok},
		{name: "a variable the chain does not read", env: []string{"EDITOR=vi"}, want: fileAccess, via: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &sandbox{t: t, home: s.home, env: append(append([]string{}, base...), tc.env...)}
			r := c.run(append([]string{"token", "--log-level", "debug"}, tc.args...)...)
			if r.code != 0 || r.stdout != tc.want+"\n" {
				t.Fatalf("token: exit %d, stdout %q; want %q\nstderr:\n%s", r.code, r.stdout, tc.want, r.stderr)
			}
			if got := strings.Contains(r.stderr, usedDaemon); got != tc.via {
				t.Errorf("through the daemon: %v; want %v\nstderr:\n%s", got, tc.via, r.stderr)
			}
			if !tc.via && !strings.Contains(r.stderr, "chain") {
				t.Errorf("the debug line does not say the chain differs:\n%s", r.stderr)
			}
		})
	}
}

// standByLife and standByBuffer are the token lifetime and the buffer of
// TestExecStandsByWhileTheDaemonKeepsTheStoreFresh: the daemon refreshes
// as a token enters the buffer (8 s before expiry), exec looks at the
// store half way into it (4 s before), so a daemon refresh late by up to
// 4 s under load still comes before exec's look; a token lives 2 s past
// the buffer, so the daemon refreshes every 2 s or so.
const (
	standByLife   = 10 * time.Second
	standByBuffer = "8" // seconds: CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS
)

// While a daemon keeps the store fresh, exec stands by: its command's
// store is refreshed by the daemon alone. When the daemon is gone, exec
// refreshes the store itself, before the token expires.
func TestExecStandsByWhileTheDaemonKeepsTheStoreFresh(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	srv.ExpiresIn = standByLife
	s.setenv("CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS=" + standByBuffer)
	s.loginFile(srv, time.Now().Add(standByLife))
	d := s.serveClients()

	stderr := &syncBuffer{}
	cmd := exec.Command(credhostBin, "exec", "--log-level", "debug", "--", "sleep", "120")
	cmd.Env, cmd.Dir, cmd.Stderr = s.env, s.home, stderr
	cmd.WaitDelay = 10 * time.Second // sleep holds stderr open if it outlives exec
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); <-done }) // exec passes TERM on to sleep
	defer func() {
		if t.Failed() {
			t.Logf("credhost exec's stderr:\n%s", stderr)
		}
	}()

	// Three token lifetimes with the daemon.
	hosttest.WaitFor(t, "the daemon's third refresh", 60*time.Second, func() bool {
		return strings.Count(d.stderr.String(), "refreshed and saved") >= 3
	})
	if !strings.Contains(stderr.String(), usedDaemon) || !strings.Contains(stderr.String(), "exec stands by") {
		t.Fatalf("exec did not take its token from the daemon, or did not stand by")
	}
	if n := strings.Count(stderr.String(), "refreshed and saved"); n != 0 {
		t.Errorf("exec refreshed %d times while the daemon kept the store fresh; want 0", n)
	}
	if srv.Reuses() != 0 {
		t.Errorf("%d refresh tokens used twice", srv.Reuses())
	}

	// The daemon is gone: exec refreshes itself, and the store stays fresh.
	d.cmd.Process.Kill()
	<-d.done
	killed := time.Now()
	hosttest.WaitFor(t, "exec's own refresh", 60*time.Second, func() bool {
		return strings.Contains(stderr.String(), "refreshed and saved")
	})
	st := s.readCredentials()
	exp, _ := st.ExpiresAt.Int64()
	if left := time.Until(time.UnixMilli(exp)); left <= 0 {
		t.Errorf("the store's token expired %v ago, %v after the daemon was killed", -left, time.Since(killed))
	}
	if srv.Reuses() != 0 {
		t.Errorf("%d refresh tokens used twice", srv.Reuses())
	}
}

// requests reads the daemon's request counts from its /metrics, each
// path and status (but /metrics's own) to its count.
func (d *daemonRun) requests() map[string]float64 {
	d.t.Helper()
	resp, err := d.client.Get("http://credhost" + daemon.PathMetrics)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		labels, ok := strings.CutPrefix(line, "credhost_requests_total{")
		if !ok || strings.Contains(labels, daemon.PathMetrics) {
			continue
		}
		labels, value, _ := strings.Cut(labels, "} ")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			d.t.Fatalf("metrics line %q: %v", line, err)
		}
		counts[labels] = v
	}
	return counts
}

// `credhost token` and `credhost exec` through the daemon ask it one
// request each, the token request itself: the check that the daemon
// answers is folded into it (no health check first).
func TestTokenThroughTheDaemonIsOneRequest(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	s.loginFile(srv, time.Now().Add(2*time.Hour))
	d := s.serveClients()
	commands := [][]string{
		{"token"},
		{"token", "--json"},
		{"exec", "--", "true"},
	}
	before := d.requests()
	for _, args := range commands {
		r := s.run(append([]string{args[0], "--log-level", "debug"}, args[1:]...)...)
		if r.code != 0 || !strings.Contains(r.stderr, usedDaemon) {
			t.Fatalf("%v: exit %d, not through the daemon; stderr:\n%s", args, r.code, r.stderr)
		}
	}
	after := d.requests()
	tokens := `path="` + daemon.PathToken + `",status="200"`
	for k, v := range after {
		want := before[k]
		if k == tokens {
			want += float64(len(commands))
		}
		if v != want {
			t.Errorf("the daemon answered %v requests %s for %d commands; want %v", v-before[k], k, len(commands), want-before[k])
		}
	}
	if after[tokens]-before[tokens] != float64(len(commands)) {
		t.Errorf("the daemon answered %v token requests for %d commands; want one each", after[tokens]-before[tokens], len(commands))
	}
}

// A token that waits at the daemon for a refresh longer than the dial
// bound is still the daemon's: the daemon says it is working on it (an
// interim answer), so the command waits rather than refresh on its own.
func TestTokenWaitsForTheDaemonsRefresh(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	old, _ := s.loginFile(srv, time.Now().Add(time.Minute)) // inside the buffer
	srv.SetDelay(4 * daemonDialBound)
	s.serveClients() // its first look starts the refresh, which takes a while
	r := s.run("token", "--log-level", "debug")
	if r.code != 0 || r.stdout == old+"\n" || r.stdout == "\n" {
		t.Fatalf("token: exit %d, the old token or none; stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, usedDaemon) || strings.Contains(r.stderr, wentDirect) {
		t.Errorf("the command did not wait for the daemon's refresh; stderr:\n%s", r.stderr)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("%d token requests; want the daemon's one", n)
	}
}
