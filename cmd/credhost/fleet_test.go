//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
	"github.com/credhost/credhost/sdk/sdktest"
)

// The fleet tests: several "machines" (credhost processes with separate
// HOME, XDG and lock directories, so no flock of credhost's is shared)
// share one store whose lock the store's plugin holds itself, through the
// plugin protocol's Lock stream. The store is testdata/sharedstore, a
// stand-in for a distributed store (a directory shared by the machines,
// its lease an flock the plugin holds); plugins/etcd runs the same rules
// against a real etcd cluster.

var (
	sharedOnce sync.Once
	sharedBin  string
	sharedErr  error
)

// sharedStorePlugin builds testdata/sharedstore once per test binary.
func sharedStorePlugin(t *testing.T) string {
	t.Helper()
	sharedOnce.Do(func() {
		sharedBin = filepath.Join(filepath.Dir(credhostBin), "sharedstore")
		out, err := exec.Command("go", "build", "-o", sharedBin, "./testdata/sharedstore").CombinedOutput()
		if err != nil {
			sharedErr = fmt.Errorf("build testdata/sharedstore: %v\n%s", err, out)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedBin
}

// fleet is one shared store, its token endpoint, and the machines using
// it.
type fleet struct {
	t      *testing.T
	dir    string // the shared store
	srv    *oauthtest.Server
	plugin string
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	return &fleet{t: t, dir: t.TempDir(), srv: oauthtest.NewServer(t), plugin: sharedStorePlugin(t)}
}

// login puts a fresh login from the endpoint into the shared store,
// expiring at expires.
func (f *fleet) login(expires time.Time) (access, refresh string) {
	f.t.Helper()
	access, refresh = f.srv.Issue()
	doc := fmt.Sprintf(`{"revision":1,"doc":{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,"scopes":["user:inference"]}}}`,
		access, refresh, expires.UnixMilli())
	if err := os.WriteFile(filepath.Join(f.dir, "credential.json"), []byte(doc), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return access, refresh
}

// stored is the access and refresh token the shared store holds.
func (f *fleet) stored() (access, refresh string) {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "credential.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	var d struct {
		Doc struct {
			O struct {
				Access  string `json:"accessToken"`
				Refresh string `json:"refreshToken"`
			} `json:"claudeAiOauth"`
		} `json:"doc"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		f.t.Fatalf("credential.json: %v", err)
	}
	return d.Doc.O.Access, d.Doc.O.Refresh
}

// machine is a sandbox of its own (HOME, XDG directories) configured with
// the shared store and refresh.timeout.
func (f *fleet) machine(timeout time.Duration) *sandbox {
	f.t.Helper()
	s := newSandbox(f.t)
	cfg := s.writeConfig(fmt.Sprintf(`version: 1
refresh: {timeout: %s}
oauth: {token_url: %q, client_id: fleet-client, body: json}
providers:
  - name: fleet
    command: %s
    config: {dir: %q}
`, timeout, f.srv.TokenURL(), f.plugin, f.dir))
	s.setenv("CREDHOST_CONFIG=" + cfg)
	return s
}

// tokenJSONOf parses `credhost token --json` output.
func tokenJSONOf(t *testing.T, r result) tokenJSON {
	t.Helper()
	var got tokenJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
		t.Fatalf("token --json: exit %d, %v; stderr:\n%s", r.code, err, r.stderr)
	}
	return got
}

// waitUntil polls cond every 5 ms for up to 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFleetStormRefreshesOnce: 3 machines × 4 concurrent `credhost token`
// on an expired credential in the shared store, against a rotating
// endpoint that answers after 300 ms: the lock the store's plugin holds
// lets exactly one refresh through; every process prints the same token,
// and the store holds it.
func TestFleetStormRefreshesOnce(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.srv.SetDelay(300 * time.Millisecond)
	old, _ := f.login(time.Now().Add(-time.Minute))
	const machines, perMachine = 3, 4
	var (
		mu   sync.Mutex
		outs []string
		errs []string
		wg   sync.WaitGroup
	)
	for range machines {
		s := f.machine(20 * time.Second)
		wg.Go(func() {
			o, e, runErrs := s.storm(perMachine)
			mu.Lock()
			defer mu.Unlock()
			for i := range o {
				outs = append(outs, o[i])
				errs = append(errs, fmt.Sprintf("exit: %v\n%s", runErrs[i], e[i]))
			}
		})
	}
	wg.Wait()
	if f.srv.Requests() != 1 || f.srv.Reuses() != 0 {
		t.Errorf("%d token requests, %d reuses; want exactly 1 and none", f.srv.Requests(), f.srv.Reuses())
	}
	saved, _ := f.stored()
	if saved == old {
		t.Fatalf("the shared store still holds the old token")
	}
	for i, out := range outs {
		if out != saved+"\n" {
			t.Errorf("process %d did not print the stored token\n%s", i, errs[i])
		}
	}
}

// TestFleetLockNotHadServesDegraded: while another holder keeps the lease
// (here the test itself), a machine whose refresh.timeout passes refreshes
// nothing: it serves the old token, degraded, saying why, and sends no
// token request.
func TestFleetLockNotHadServesDegraded(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	old, _ := f.login(time.Now().Add(-time.Minute))
	lease, err := os.OpenFile(filepath.Join(f.dir, "lease"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Close()
	if err := syscall.Flock(int(lease.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	r := f.machine(time.Second).run("token", "--json")
	got := tokenJSONOf(t, r)
	if !got.Degraded || got.AccessToken != old {
		t.Errorf("degraded %v, old token %v; want the old token, degraded", got.Degraded, got.AccessToken == old)
	}
	if !strings.Contains(r.stderr, "could not be had within") || !strings.Contains(r.stderr, "sharedstore lease") {
		t.Errorf("stderr does not say the store's lock could not be had in time:\n%s", r.stderr)
	}
	if f.srv.Arrived() != 0 {
		t.Errorf("%d token requests without the lock; want none", f.srv.Arrived())
	}
}

// TestFleetKilledHolderReleasesTheLock: a lock holder killed in the middle
// of its refresh (the token request in flight, not yet answered) leaves
// the lock free: killing credhost ends its Lock stream and the plugin
// lets the lease go (or goes with it); killing the plugin ends its lease.
// Another machine then refreshes at once, with no reuse, and the killed
// holder saved nothing.
func TestFleetKilledHolderReleasesTheLock(t *testing.T) {
	t.Parallel()
	for _, victim := range []string{"credhost", "plugin"} {
		t.Run(victim, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			f.srv.SetDelay(time.Minute)
			_, oldRefresh := f.login(time.Now().Add(-time.Minute))
			holder := f.machine(2*time.Minute).start("token", "--json")
			waitUntil(t, "the holder's token request", func() bool { return f.srv.Arrived() == 1 })
			pid := holder.cmd.Process.Pid
			if victim == "plugin" {
				data, err := os.ReadFile(filepath.Join(f.dir, "holder.pid"))
				if err != nil {
					t.Fatalf("holder.pid: %v", err)
				}
				pid, _ = strconv.Atoi(string(data))
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-holder.done
			if victim == "plugin" && strings.Contains(holder.stderr.String(), "refreshed and saved") {
				t.Errorf("the holder saved after its plugin was killed:\n%s", holder.stderr.String())
			}

			f.srv.SetDelay(0)
			start := time.Now()
			r := f.machine(30*time.Second).run("token", "--json")
			got := tokenJSONOf(t, r)
			if !got.Refreshed || got.Degraded {
				t.Fatalf("next machine: refreshed %v degraded %v; want a refresh\n%s", got.Refreshed, got.Degraded, r.stderr)
			}
			if waited := time.Since(start); waited > 15*time.Second {
				t.Errorf("the next machine took %s; the killed holder's lock should have been free", waited)
			}
			if stored, rt := f.stored(); stored != got.AccessToken || rt == oldRefresh {
				t.Errorf("the store holds the new login: %v; want it saved", stored == got.AccessToken)
			}
			if f.srv.Reuses() != 0 {
				t.Errorf("%d reuses; want none", f.srv.Reuses())
			}
		})
	}
}

// TestFleetSpentRefreshTokenEndsInLogInAgain: the endpoint rotates the
// token as the holder's request arrives and answers late; the holder is
// killed before the answer, so nobody holds the new refresh token. The
// next machine presents the old one once (nothing tells this apart from a
// request that never arrived), is refused, and says "log in again"; its
// later calls say so without presenting it again: no loop of reuses.
func TestFleetSpentRefreshTokenEndsInLogInAgain(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.srv.SetMode(oauthtest.RotateOnArrival)
	f.srv.SetDelay(time.Minute)
	old, _ := f.login(time.Now().Add(-time.Minute))
	holder := f.machine(2 * time.Minute).start("token")
	waitUntil(t, "the holder's token request", func() bool { return f.srv.Arrived() == 1 })
	if err := holder.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-holder.done

	f.srv.SetDelay(0)
	next := f.machine(30 * time.Second)
	for i := range 3 {
		r := next.run("token", "--json")
		got := tokenJSONOf(t, r)
		if !got.Degraded || got.AccessToken != old || !strings.Contains(r.stderr, "log in again") {
			t.Errorf("call %d: degraded %v; want the old token, degraded, saying log in again\n%s", i, got.Degraded, r.stderr)
		}
	}
	if f.srv.Arrived() != 2 || f.srv.Reuses() != 1 {
		t.Errorf("%d token requests, %d reuses; want the holder's and one more, presented once", f.srv.Arrived(), f.srv.Reuses())
	}
}

// TestSharedStoreConformance: the stand-in store passes the conformance
// suite across a real process boundary, which takes and releases the
// lock it holds itself (and takes it again once released).
func TestSharedStoreConformance(t *testing.T) {
	t.Parallel()
	bin := sharedStorePlugin(t)
	factory := func(t *testing.T, setup sdktest.Setup) sdk.Provider {
		dir := t.TempDir()
		if setup.Seed != nil {
			doc, err := credjson.Merge(nil, "claudeAiOauth", *setup.Seed)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := json.Marshal(map[string]any{"revision": 1, "doc": json.RawMessage(doc)})
			if err := os.WriteFile(filepath.Join(dir, "credential.json"), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return setup.Configure(t, sdktest.Dial(t, exec.Command(bin)), "fleet", fmt.Sprintf(`{"dir":%q}`, dir))
	}
	sdktest.Run(t, factory)
	sdktest.RunRefresh(t, factory)
}
