//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credhost/credhost/host/daemon"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// benchDaemon is a background process serving HTTP on a unix socket:
// credhost serve, or the bare floor (testdata/unixhttp).
type benchDaemon struct {
	cmd    *exec.Cmd
	socket string
	client *http.Client
	stderr bytes.Buffer
}

// startBenchDaemon starts argv (with the socket path appended where the
// command wants it) and waits until GET path answers 200.
func startBenchDaemon(b *testing.B, env []string, socket, path string, argv ...string) *benchDaemon {
	b.Helper()
	d := &benchDaemon{socket: socket, client: unixClient(socket)}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Env = env
	d.cmd.Stderr = &d.stderr
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		d.cmd.Process.Kill()
		d.cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := d.client.Get("http://credhost" + path); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("%v does not answer on %s; stderr:\n%s", argv, socket, d.stderr.String())
	return nil
}

// get is one round trip: GET path, body read to the end, status 200.
func (d *benchDaemon) get(path string) error {
	resp, err := d.client.Get("http://credhost" + path)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return err
}

// benchServeEnv is a sandbox with a token valid for an hour in the
// credentials file, and its clean environment.
func benchServeEnv(b *testing.B) (home string, env []string) {
	b.Helper()
	home = b.TempDir()
	dir := filepath.Join(home, ".claude")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".credentials.json"), []byte(validCredentials(time.Now().Add(time.Hour))), 0o600); err != nil {
		b.Fatal(err)
	}
	return home, newSandboxEnv(home)
}

// benchSocketDir is a short private directory for sockets (a socket path
// must fit in about 100 bytes).
func benchSocketDir(b *testing.B) string {
	b.Helper()
	dir, err := os.MkdirTemp("", "chb-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// BenchmarkDaemon measures credhost serve, each figure next to its floor
// in the same run and interleaved with it (one floor request, one daemon
// request, and so on), so a change of machine load hits both alike:
//
//	roundtrip      GET /v1/token from credhost serve (daemon-ns/op) next to
//	               a bare net/http server on a unix socket answering a
//	               token-sized JSON body (testdata/unixhttp, floor-ns/op),
//	               from the same client; daemon/floor is the ratio
//	concurrentN    bursts of N clients at once (1, 10, 100, 1000), to
//	               each server in turn; each request's latency at the 50th
//	               and 99th percentile
//	refresh/N      N clients at once POST /v1/refresh naming the token
//	               they saw rejected, against a real token endpoint (see
//	               benchDaemonRefresh)
//	token/...      a cold `credhost token` answered by the daemon
//	               (daemon-ns/op) next to `credhost token --no-daemon`
//	               (direct-ns/op) and to `credhost --version`
//	               (start-ns/op: the binary's start alone, the floor of
//	               any client that is a credhost process); daemon/direct
//	               and daemon/start are the ratios; with the built-ins
//	               in-process and as plugin processes. With
//	               $CREDHOST_BENCH_BASE naming another credhost binary (an
//	               older build), its `credhost token` through the same
//	               daemon is timed too, in turn with the others
//	               (base-ns/op, base/daemon): a before and after from
//	               one run; each kind of run's CPU time (user and
//	               system) as NAME-cpu-ms/op, which a loaded machine
//	               blurs less than the wall time
//
// The chain is the embedded default with the token in the file; the
// daemon for roundtrip and concurrent100 runs the built-ins in-process. Run with:
// go test -run '^$' -bench 'Daemon$' -count 10 ./cmd/credhost | benchstat -
func BenchmarkDaemon(b *testing.B) {
	_, env := benchServeEnv(b)
	inProcess := append(slices.Clone(env), "CREDHOST_BUILTIN=in-process")
	bin := b.TempDir()
	floorBin := filepath.Join(bin, "unixhttp")
	if out, err := goBuild(floorBin, "./testdata/unixhttp").CombinedOutput(); err != nil {
		b.Fatalf("build unixhttp: %v\n%s", err, out)
	}
	sockets := benchSocketDir(b)
	floorSock, daemonSock := filepath.Join(sockets, "floor.sock"), filepath.Join(sockets, "credhost.sock")
	floor := startBenchDaemon(b, env, floorSock, daemon.PathToken, floorBin, floorSock)
	serve := startBenchDaemon(b, inProcess, daemonSock, daemon.PathToken, credhostBin, "serve", "--socket", daemonSock)

	b.Run("roundtrip", func(b *testing.B) {
		var floorT, daemonT time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			if err := floor.get(daemon.PathToken); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := serve.get(daemon.PathToken); err != nil {
				b.Fatal(err)
			}
			floorT, daemonT = floorT+t1.Sub(t0), daemonT+time.Since(t1)
			n++
		}
		reportPair(b, n, floorT, daemonT, "floor", "daemon")
	})

	for _, clients := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("concurrent%d", clients), func(b *testing.B) {
			var floorLat, daemonLat []time.Duration
			for b.Loop() {
				floorLat = append(floorLat, burst(b, floor, clients)...)
				daemonLat = append(daemonLat, burst(b, serve, clients)...)
			}
			reportPercentiles(b, "floor", floorLat)
			reportPercentiles(b, "daemon", daemonLat)
		})
	}

	b.Run("refresh", func(b *testing.B) { benchDaemonRefresh(b, env, sockets) })

	// The chain's built-ins in-process (the default), then each a plugin
	// process, where a cold start costs most and the daemon saves most.
	for _, mode := range modes {
		b.Run("token/builtins="+mode, func(b *testing.B) {
			env := append(slices.Clone(env), "CREDHOST_BUILTIN="+mode)
			sock := filepath.Join(sockets, mode+".sock")
			d := serve
			if mode != "in-process" {
				d = startBenchDaemon(b, env, sock, daemon.PathToken, credhostBin, "serve", "--socket", sock)
			} else {
				sock = daemonSock
			}
			direct := append(slices.Clone(env), daemon.SocketEnv+"="+filepath.Join(sockets, "none.sock"))
			via := append(slices.Clone(env), daemon.SocketEnv+"="+sock)
			// cpu is each kind of run's CPU time (user and system): on a
			// loaded machine it varies less than the wall time, which
			// includes the waits for a core.
			cpu := map[string]time.Duration{}
			runBin := func(name, bin string, env []string, args ...string) time.Duration {
				start := time.Now()
				cmd := exec.Command(bin, args...)
				cmd.Env = env
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s %v: %v\n%s", bin, args, err, out)
				}
				took := time.Since(start)
				cpu[name] += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
				return took
			}
			run := func(name string, env []string, args ...string) time.Duration {
				return runBin(name, credhostBin, env, args...)
			}
			base := os.Getenv("CREDHOST_BENCH_BASE")
			before := servedTokens(b, d)
			var directT, daemonT, startT, baseT time.Duration
			n := 0
			for b.Loop() {
				startT += run("start", via, "--version")
				directT += run("direct", direct, "token", "--no-daemon")
				daemonT += run("daemon", via, "token")
				if base != "" {
					baseT += runBin("base", base, via, "token")
				}
				n++
			}
			// The daemon's own metrics say it answered every `credhost
			// token` through it and none of the --no-daemon ones.
			want := float64(n)
			if base != "" {
				want *= 2
			}
			if served := servedTokens(b, d) - before; served != want {
				b.Fatalf("the daemon served %v GET /v1/token for %v `credhost token` through it and %d direct; want exactly %v", served, want, n, want)
			}
			reportPair(b, n, directT, daemonT, "direct", "daemon")
			b.ReportMetric(float64(startT.Nanoseconds())/float64(n), "start-ns/op")
			b.ReportMetric(float64(daemonT)/float64(startT), "daemon/start")
			for name, t := range cpu {
				b.ReportMetric(float64(t.Microseconds())/1000/float64(n), name+"-cpu-ms/op")
			}
			if base != "" {
				b.ReportMetric(float64(baseT.Nanoseconds())/float64(n), "base-ns/op")
				b.ReportMetric(float64(baseT)/float64(daemonT), "base/daemon")
			}
		})
	}
}

// reportPercentiles reports the 50th and 99th percentile of lat as
// p50-NAME-ns and p99-NAME-ns.
func reportPercentiles(b *testing.B, name string, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-"+name+"-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-"+name+"-ns")
}

// benchDaemonRefresh times N clients (1, 10, 100, 1000) at once asking
// credhost serve (built-ins in-process) for a refresh of the token they
// all saw rejected (POST /v1/refresh naming its fingerprint), the login in
// the real credentials file and refreshed against a real token endpoint
// (oauthtest), next to its floor in the same loop: N goroutines of which
// one makes one bare HTTP POST of a refresh grant to the same endpoint
// (a login of its own) and the rest wait for it. Each burst must cost
// exactly one token request (the one-refresh and reactive-refresh rules),
// else the run fails; every client must get the same new token.
func benchDaemonRefresh(b *testing.B, env []string, sockets string) {
	srv := oauthtest.NewServer(b)
	home := b.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".claude"), 0o700); err != nil {
		b.Fatal(err)
	}
	access, refresh := srv.Issue()
	login := fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,"scopes":["user:inference"],"subscriptionType":"max"}}`,
		access, refresh, time.Now().Add(time.Hour).UnixMilli())
	if err := os.WriteFile(filepath.Join(home, ".claude", ".credentials.json"), []byte(login), 0o600); err != nil {
		b.Fatal(err)
	}
	env = append(newSandboxEnv(home), "CREDHOST_BUILTIN=in-process", "CLAUDE_OAUTH_TOKEN_URL="+srv.TokenURL())
	sock := filepath.Join(sockets, "refresh.sock")
	d := startBenchDaemon(b, env, sock, daemon.PathToken, credhostBin, "serve", "--socket", sock)
	_, floorRefresh := srv.Issue()
	floorClient := &http.Client{Timeout: 30 * time.Second}
	post := func() error {
		body := fmt.Sprintf(`{"grant_type":"refresh_token","refresh_token":%q}`, floorRefresh)
		resp, err := floorClient.Post(srv.TokenURL(), "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var tok struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.RefreshToken == "" {
			return fmt.Errorf("the floor's refresh: status %d, %v", resp.StatusCode, err)
		}
		floorRefresh = tok.RefreshToken
		return nil
	}
	current := func() daemon.Token {
		resp, err := d.client.Get("http://credhost" + daemon.PathToken)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var t daemon.Token
		if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
			b.Fatal(err)
		}
		return t
	}
	for _, clients := range []int{1, 10, 100, 1000} {
		b.Run(strconv.Itoa(clients), func(b *testing.B) {
			var floorLat, daemonLat []time.Duration
			requests, bursts := 0, 0
			reuses := srv.Reuses()
			for b.Loop() {
				var once sync.Once
				var postErr error
				floorLat = append(floorLat, callers(b, clients, func() error {
					once.Do(func() { postErr = post() })
					return postErr
				})...)
				rejected := current().Fingerprint
				before := srv.Requests()
				got := make(chan string, clients)
				daemonLat = append(daemonLat, callers(b, clients, func() error {
					resp, err := d.client.Post("http://credhost"+daemon.PathRefresh, "application/json",
						strings.NewReader(`{"rejected":"`+rejected+`"}`))
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					var t daemon.Token
					if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || resp.StatusCode != http.StatusOK {
						return fmt.Errorf("POST %s: status %d, %v", daemon.PathRefresh, resp.StatusCode, err)
					}
					got <- t.Fingerprint
					return nil
				})...)
				n := srv.Requests() - before
				if n != 1 {
					b.Fatalf("%d token requests for %d clients refreshing one rejected token; want exactly 1", n, clients)
				}
				requests, bursts = requests+n, bursts+1
				close(got)
				first := <-got
				for fp := range got {
					if fp != first || fp == rejected {
						b.Fatalf("%d clients got different or the rejected tokens; want one new token for all", clients)
					}
				}
			}
			if n := srv.Reuses() - reuses; n != 0 {
				b.Fatalf("the endpoint saw %d refresh-token reuses", n)
			}
			b.ReportMetric(float64(requests)/float64(bursts), "requests/burst")
			reportPercentiles(b, "floor", floorLat)
			reportPercentiles(b, "daemon", daemonLat)
		})
	}
}

// reportPair reports two interleaved timings per operation and their ratio.
func reportPair(b *testing.B, n int, floorT, t time.Duration, floorName, name string) {
	b.ReportMetric(float64(floorT.Nanoseconds())/float64(n), floorName+"-ns/op")
	b.ReportMetric(float64(t.Nanoseconds())/float64(n), name+"-ns/op")
	b.ReportMetric(float64(t)/float64(floorT), name+"/"+floorName)
}

// burst sends clients GET /v1/token at once and returns each one's latency.
func burst(b *testing.B, d *benchDaemon, clients int) []time.Duration {
	lat := make([]time.Duration, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			start := time.Now()
			errs[i] = d.get(daemon.PathToken)
			lat[i] = time.Since(start)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return lat
}

// servedTokens is the daemon's count of GET /v1/token answered 200, from
// its /metrics.
func servedTokens(b *testing.B, d *benchDaemon) float64 {
	b.Helper()
	resp, err := d.client.Get("http://credhost" + daemon.PathMetrics)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	prefix := `credhost_requests_total{path="` + daemon.PathToken + `",status="200"} `
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// BenchmarkDaemonRSS serves a million GET /v1/token (8 clients at once)
// and reports the daemon's resident memory after a warm-up and after each
// quarter million: it must not grow with the requests served. One run is
// the measurement (b.N is not used):
// go test -run '^$' -bench DaemonRSS -benchtime 1x ./cmd/credhost
func BenchmarkDaemonRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("reads the daemon's RSS from /proc")
	}
	_, env := benchServeEnv(b)
	env = append(env, "CREDHOST_BUILTIN=in-process")
	sock := filepath.Join(benchSocketDir(b), "credhost.sock")
	d := startBenchDaemon(b, env, sock, daemon.PathToken, credhostBin, "serve", "--socket", sock)
	const total, clients, quarter = 1_000_000, 8, 250_000
	serveN := func(n int) {
		var next atomic.Int64
		var failed atomic.Value
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if err := d.get(daemon.PathToken); err != nil {
						failed.Store(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		serveN(10_000) // warm: connections, buffers, the heap's working size
		b.ReportMetric(rssKB(b, d.cmd.Process.Pid), "rss-warm-kB")
		start := time.Now()
		for q := 1; q <= total/quarter; q++ {
			serveN(quarter)
			b.ReportMetric(rssKB(b, d.cmd.Process.Pid), fmt.Sprintf("rss-%dk-kB", q*quarter/1000))
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/total, "ns/request")
		if got := servedTokens(b, d); got < total {
			b.Fatalf("the daemon counted %v requests; want at least %d", got, total)
		}
	}
}

// rssKB is VmRSS of process pid, in kB.
func rssKB(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatal("no VmRSS in /proc/PID/status")
	return 0
}
