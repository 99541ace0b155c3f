//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// The real executables, built once: credhost and this plugin, as a fleet
// runs them (the plugin named by command: in each machine's config).
var (
	buildOnce               sync.Once
	buildErr                error
	binDir                  string // removed by TestMain
	credhostBin, etcdPlugin string
)

func binaries(t testing.TB) (credhost, plugin string) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "credhost-etcd-test-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		credhostBin, etcdPlugin = filepath.Join(dir, "credhost"), filepath.Join(dir, "credhost-etcd")
		for _, b := range []struct{ out, pkg string }{
			{credhostBin, "github.com/credhost/credhost/cmd/credhost"},
			{etcdPlugin, "."},
		} {
			if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return credhostBin, etcdPlugin
}

// machine is one machine of a fleet: a HOME, XDG directories and config of
// its own (so no file lock is shared with another machine), running the
// real credhost with the etcd plugin.
type machine struct {
	t      testing.TB
	home   string
	config string
	env    []string
}

// fleetConfig says how a machine's credhost is set up.
type fleetConfig struct {
	cluster  *cluster
	key      string
	tokenURL string
	// extra plugin config keys, as JSON members ("lock_ttl":"2s").
	extra []string
	// after, YAML appended to the providers list.
	after string
	// refreshTimeout and callTimeout are the host's.
	refreshTimeout, callTimeout string
	// env is the provider's env: list (YAML), if any.
	env string
}

func newMachine(t testing.TB, fc fleetConfig) *machine {
	t.Helper()
	_, plugin := binaries(t)
	home := t.TempDir()
	m := &machine{t: t, home: home, config: filepath.Join(home, "credhost.yaml")}
	m.env = []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_RUNTIME_DIR=" + filepath.Join(home, "run"),
		"DBUS_SESSION_BUS_ADDRESS=",
	}
	// Generous bounds: a storm runs 48 processes and three etcd members
	// on whatever the machine has; the tests are about how many refreshes
	// happen, not how fast.
	if fc.refreshTimeout == "" {
		fc.refreshTimeout = "60s"
	}
	if fc.callTimeout == "" {
		fc.callTimeout = "30s"
		fc.extra = append([]string{`"dial_timeout":"10s","call_timeout":"20s"`}, fc.extra...)
	}
	cfg := fmt.Sprintf(`version: 1
refresh: {buffer: 1m, timeout: %s}
oauth: {token_url: %q, default_expires_in: 8h}
plugins: {call_timeout: %s}
providers:
  - name: fleet
    command: %s
    config: %s
%s%s`, fc.refreshTimeout, fc.tokenURL, fc.callTimeout, plugin, fc.cluster.configJSON(fc.key, fc.extra...), envLine(fc.env), fc.after)
	if err := os.WriteFile(m.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return m
}

func envLine(env string) string {
	if env == "" {
		return ""
	}
	return "    env: " + env + "\n"
}

// command is `credhost --config <this machine's> args...`.
func (m *machine) command(args ...string) *exec.Cmd {
	credhost, _ := binaries(m.t)
	cmd := exec.Command(credhost, append([]string{"--config", m.config}, args...)...)
	cmd.Env = m.env
	cmd.Dir = m.home
	return cmd
}

type run struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (m *machine) run(args ...string) run {
	m.t.Helper()
	cmd := m.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := run{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		m.t.Fatalf("run credhost: %v", err)
	}
	return r
}

// storm runs perMachine `credhost token` on every machine at once and
// returns every run, machine by machine.
func storm(machines []*machine, perMachine int) []run {
	runs := make([]run, len(machines)*perMachine)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, m := range machines {
		for j := range perMachine {
			wg.Go(func() {
				cmd := m.command("token")
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				<-start
				err := cmd.Run()
				r := run{stdout: stdout.String(), stderr: stderr.String()}
				if ee, ok := err.(*exec.ExitError); ok {
					r.code = ee.ExitCode()
				} else if err != nil {
					r.code, r.stderr = -1, err.Error()
				}
				runs[i*perMachine+j] = r
			})
		}
	}
	close(start)
	wg.Wait()
	return runs
}

// storedAccess returns the access token the document under key holds.
func (c *cluster) storedAccess(key string) string {
	c.t.Helper()
	v, _ := c.get(key)
	if v == "" {
		return ""
	}
	_, cred, err := credjson.Parse([]byte(v), credjson.DefaultKey)
	if err != nil {
		c.t.Fatalf("etcd key %s: %v", key, err)
	}
	return cred.AccessToken
}

// fleet is a cluster, a rotating token endpoint and an expired login in
// etcd, shared by n machines.
func fleet(t *testing.T, n int, fc fleetConfig, opts ...clusterOption) (*cluster, *oauthtest.Server, []*machine, string) {
	t.Helper()
	c := startCluster(t, 3, opts...)
	srv := oauthtest.NewServer(t)
	key := newKey(t)
	access, refresh := srv.Issue()
	c.seed(key, sdk.Credential{AccessToken: access, RefreshToken: refresh, ExpiresAt: time.Now().Add(-time.Minute)})
	fc.cluster, fc.key, fc.tokenURL = c, key, srv.TokenURL()
	var ms []*machine
	for range n {
		ms = append(ms, newMachine(t, fc))
	}
	return c, srv, ms, key
}

// checkOneRefresh checks a storm's outcome: one token request, no reuse,
// every process printed the token etcd now holds.
func checkOneRefresh(t *testing.T, c *cluster, srv *oauthtest.Server, key, old string, runs []run) {
	t.Helper()
	if srv.Requests() != 1 || srv.Reuses() != 0 {
		t.Errorf("%d token requests, %d reuses; want exactly 1 and none", srv.Requests(), srv.Reuses())
	}
	saved := c.storedAccess(key)
	if saved == old || saved == "" {
		t.Fatalf("etcd does not hold a new token (fingerprint %s)", sdk.Fingerprint(saved))
	}
	for i, r := range runs {
		if r.code != 0 || r.stdout != saved+"\n" {
			t.Errorf("process %d: exit %d, printed the token etcd holds: %v\nstderr:\n%s", i, r.code, r.stdout == saved+"\n", r.stderr)
		}
	}
}

// TestFleetRefreshesOnce: three machines, eight `credhost token` each, all
// at once on an expired credential in etcd, against a rotating endpoint
// that answers after 500 ms: exactly one token request, no reuse, all 24
// print the same new token, and etcd holds it.
func TestFleetRefreshesOnce(t *testing.T) {
	// Not parallel: a storm loads the machine enough on its own.
	c, srv, ms, key := fleet(t, 3, fleetConfig{})
	old := c.storedAccess(key)
	srv.SetDelay(500 * time.Millisecond)
	runs := storm(ms, 8)
	checkOneRefresh(t, c, srv, key, old, runs)
}

// TestFleetRefreshesOnceWhileAMemberStops: the same storm, with one etcd
// member stopped while the refresh is in flight: still one refresh.
func TestFleetRefreshesOnceWhileAMemberStops(t *testing.T) {
	// Not parallel: a storm loads the machine enough on its own.
	c, srv, ms, key := fleet(t, 3, fleetConfig{})
	old := c.storedAccess(key)
	srv.SetDelay(time.Second)
	done := make(chan []run)
	go func() { done <- storm(ms, 8) }()
	deadline := time.Now().Add(30 * time.Second)
	for srv.Arrived() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if srv.Arrived() == 0 {
		t.Fatal("no token request within 30s")
	}
	c.stop(0)
	runs := <-done
	checkOneRefresh(t, c, srv, key, old, runs)

	d := ms[0].run("doctor")
	if !strings.Contains(d.stdout, "1 of 3 etcd members do not answer") {
		t.Errorf("doctor with a member stopped does not say so:\n%s%s", d.stdout, d.stderr)
	}
}

// TestFleetTLSWithClientCertificates: members that demand a client
// certificate from a CA made at run time; a machine with one refreshes,
// and doctor on a machine with a certificate from another CA says the
// cluster cannot be reached with it.
func TestFleetTLSWithClientCertificates(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	c, srv, ms, key := fleet(t, 1, fleetConfig{}, withTLS(pki))
	old := c.storedAccess(key)
	r := ms[0].run("token")
	checkOneRefresh(t, c, srv, key, old, []run{r})

	stranger := newMachine(t, fleetConfig{cluster: &cluster{t: t, members: c.members}, key: key, tokenURL: srv.TokenURL(),
		extra: []string{fmt.Sprintf(`"ca_file":%q,"cert_file":%q,"key_file":%q`, pki.caCert, pki.otherCert, pki.otherKey)}})
	d := stranger.run("doctor")
	if d.code == 0 || !strings.Contains(d.stdout, "error") || !strings.Contains(d.stdout, "etcd") {
		t.Errorf("doctor with a certificate from another CA: exit %d\n%s%s", d.code, d.stdout, d.stderr)
	}
	if got := stranger.run("token"); got.code == 0 {
		t.Errorf("token with a certificate from another CA succeeded: %s", got.stdout)
	}
}

// TestFleetDownAnswersWithinTheCallTimeout: with every etcd member
// stopped, `credhost token` answers from the next provider within the
// host's call timeout, and doctor says what is wrong.
func TestFleetDownAnswersWithinTheCallTimeout(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	srv := oauthtest.NewServer(t)
	key := newKey(t)
	home := t.TempDir()
	file := filepath.Join(home, "fallback.json")
	if err := os.WriteFile(file, []byte(`{"claudeAiOauth":{"accessToken":"fallback-access","refreshToken":"fallback-refresh","expiresAt":`+fmt.Sprint(time.Now().Add(time.Hour).UnixMilli())+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMachine(t, fleetConfig{cluster: c, key: key, tokenURL: srv.TokenURL(), callTimeout: "3s",
		extra: []string{`"dial_timeout":"1s","call_timeout":"1s"`},
		after: fmt.Sprintf("  - {name: file, plugin: file, config: {path: %q}}\n", file)})
	c.stopAll()

	r := m.run("token")
	if r.code != 0 || r.stdout != "fallback-access\n" {
		t.Fatalf("token with etcd down: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	// The call timeout is 3s (the plugin's own, 1s, usually ends the
	// read first); starting and ending credhost and the plugin comes on
	// top, which took over 3s more in a full parallel test run on a loaded
	// machine. The bound leaves that generous room: what it catches is a
	// read of a fleet that is down going on past the call timeout.
	if r.took > 3*time.Second+15*time.Second {
		t.Errorf("token with etcd down took %v; want an answer within the call timeout (3s) plus process start and end", r.took)
	}
	if !strings.Contains(r.stderr, "fleet") || !strings.Contains(r.stderr, "unreachable") {
		t.Errorf("stderr does not say the fleet store is unreachable:\n%s", r.stderr)
	}
	d := m.run("doctor")
	if d.code == 0 || !strings.Contains(d.stdout, "unreachable") {
		t.Errorf("doctor with etcd down: exit %d\n%s%s", d.code, d.stdout, d.stderr)
	}
}

// killHolderMidRefresh starts `credhost token` on m, waits until its
// token request reaches srv, and kills it with SIGKILL (its plugin
// process ends with it, without releasing the fleet lock: the lease
// expires).
func killHolderMidRefresh(t *testing.T, m *machine, srv *oauthtest.Server) {
	t.Helper()
	holder := m.command("token")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.Arrived() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if srv.Arrived() == 0 {
		holder.Process.Kill()
		holder.Wait()
		t.Fatal("the first machine never sent its token request")
	}
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
}

// TestFleetKilledHolderBeforeRotation: the machine holding the fleet lock
// is killed while its token request waits at the endpoint, which had not
// rotated the token yet. Another machine gets the lock once the dead
// holder's lease expires (lock_ttl 2s) and completes the refresh: no
// reuse, and etcd holds the new token.
func TestFleetKilledHolderBeforeRotation(t *testing.T) {
	t.Parallel()
	c, srv, ms, key := fleet(t, 2, fleetConfig{extra: []string{`"lock_ttl":"2s"`}})
	old := c.storedAccess(key)
	srv.SetDelay(30 * time.Second)
	killHolderMidRefresh(t, ms[0], srv)

	srv.SetDelay(0)
	r := ms[1].run("token")
	saved := c.storedAccess(key)
	if r.code != 0 || saved == old || r.stdout != saved+"\n" {
		t.Fatalf("second machine: exit %d, printed the new token etcd holds: %v (etcd changed: %v)\n%s", r.code, r.stdout == saved+"\n", saved != old, r.stderr)
	}
	if srv.Reuses() != 0 || srv.Requests() != 1 || srv.Arrived() != 2 {
		t.Errorf("%d arrived, %d answered, %d reuses; want the killed request unanswered, one refresh, no reuse", srv.Arrived(), srv.Requests(), srv.Reuses())
	}
	if v, _ := c.get(key + refreshingSuffix); v != "" {
		t.Errorf("the in-flight record is left after the save: %s", v)
	}
}

// TestFleetKilledHolderAfterRotation: the endpoint rotates the token as
// the request arrives and answers late; the holder is killed before the
// answer, so nobody holds the new refresh token. The next machine may
// present the old one once (nothing tells this apart from a request that
// never arrived) and ends degraded with "log in again"; no machine
// presents it again, on this machine or any other: never a loop of
// reuses.
func TestFleetKilledHolderAfterRotation(t *testing.T) {
	t.Parallel()
	c, srv, ms, key := fleet(t, 3, fleetConfig{extra: []string{`"lock_ttl":"2s"`}})
	old := c.storedAccess(key)
	srv.SetMode(oauthtest.RotateOnArrival)
	srv.SetDelay(30 * time.Second)
	killHolderMidRefresh(t, ms[0], srv)
	srv.SetDelay(0)

	r := ms[1].run("token")
	if r.code != 0 || !strings.Contains(r.stderr, "log in again") {
		t.Fatalf("next machine: exit %d; want degraded with \"log in again\"\n%s", r.code, r.stderr)
	}
	if srv.Reuses() > 1 {
		t.Fatalf("%d reuses; want at most the one retry", srv.Reuses())
	}
	requests := srv.Requests()
	for _, m := range []*machine{ms[2], ms[1], ms[0]} {
		r := m.run("token")
		if r.code != 0 || !strings.Contains(r.stderr, "log in again") {
			t.Errorf("machine %s later: exit %d; want degraded with \"log in again\"\n%s", m.home, r.code, r.stderr)
		}
	}
	if srv.Requests() != requests || srv.Reuses() > 1 {
		t.Errorf("%d more token requests, %d reuses in all; want the spent token never presented again", srv.Requests()-requests, srv.Reuses())
	}
	if got := c.storedAccess(key); got != old {
		t.Errorf("etcd changed (fingerprint %s); a failed refresh must leave the store as it was", sdk.Fingerprint(got))
	}
}

// TestFleetUserAndPasswordFromTheEnvironment: a cluster with
// authentication on; the password reaches the plugin only through the
// variable password_env names (listed in the provider's env). With it,
// the machine refreshes; with a wrong one, doctor says authentication
// failed and never prints the password.
func TestFleetUserAndPasswordFromTheEnvironment(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	srv := oauthtest.NewServer(t)
	key := newKey(t)
	access, refresh := srv.Issue()
	c.seed(key, sdk.Credential{AccessToken: access, RefreshToken: refresh, ExpiresAt: time.Now().Add(-time.Minute)})
	const password = "etcd-password-SECRET"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := c.client()
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", password); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("enable etcd authentication: %v", err)
		}
	}
	fc := fleetConfig{cluster: c, key: key, tokenURL: srv.TokenURL(),
		extra: []string{`"username":"root","password_env":"FLEET_ETCD_PASSWORD"`},
		after: "", env: "[FLEET_ETCD_PASSWORD]"}
	m := newMachine(t, fc)
	m.env = append(m.env, "FLEET_ETCD_PASSWORD="+password)
	r := m.run("token")
	if r.code != 0 || r.stdout == access+"\n" || srv.Requests() != 1 {
		t.Fatalf("token as root: exit %d, refreshed: %v, %d requests\n%s", r.code, r.stdout != access+"\n", srv.Requests(), r.stderr)
	}

	wrong := newMachine(t, fc)
	wrong.env = append(wrong.env, "FLEET_ETCD_PASSWORD=not-the-password")
	d := wrong.run("doctor")
	if d.code == 0 || !strings.Contains(d.stdout, `authentication as "root" failed`) {
		t.Errorf("doctor with a wrong password: exit %d\n%s%s", d.code, d.stdout, d.stderr)
	}
	for _, out := range []string{r.stderr, d.stdout, d.stderr} {
		if strings.Contains(out, password) || strings.Contains(out, "not-the-password") {
			t.Errorf("a password reached the output:\n%s", out)
		}
	}
}

// TestFleetLockHeldElsewhereServesDegraded: while another machine holds
// the fleet lock for longer than refresh.timeout, `credhost token` sends
// no token request and serves the token it has, degraded, saying why.
func TestFleetLockHeldElsewhereServesDegraded(t *testing.T) {
	t.Parallel()
	c, srv, ms, key := fleet(t, 1, fleetConfig{refreshTimeout: "2s"})
	old := c.storedAccess(key)
	other := configured(t, c, key, sdk.OAuthConfig{})
	h, err := other.Lock(context.Background(), lockOf(t, other))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(context.Background())

	r := ms[0].run("token", "--json")
	var out struct {
		AccessToken string `json:"access_token"`
		Degraded    bool   `json:"degraded"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("token --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if !out.Degraded || out.AccessToken != old || !strings.Contains(r.stderr, "could not be had") {
		t.Errorf("degraded %v, the old token %v; want the old token, degraded, saying the lock could not be had:\n%s", out.Degraded, out.AccessToken == old, r.stderr)
	}
	if srv.Arrived() != 0 {
		t.Errorf("%d token requests while another machine held the lock; want none", srv.Arrived())
	}
}
