//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// requireEtcdEnv, set to 1 (as .ci/test does), turns a missing etcd binary
// from a skip into a failure, so CI never passes by skipping every etcd test.
const requireEtcdEnv = "CREDHOST_REQUIRE_ETCD"

// etcdBinary returns the path of the etcd server, or skips the test (fails
// it under CREDHOST_REQUIRE_ETCD=1) when there is none.
func etcdBinary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("etcd")
	if err == nil {
		return path
	}
	if os.Getenv(requireEtcdEnv) == "1" {
		t.Fatalf("%s=1 but no etcd server on PATH (Debian: apt-get install etcd-server etcd-client): %v", requireEtcdEnv, err)
	}
	t.Skip("no etcd server on PATH (Debian: apt-get install etcd-server); set " + requireEtcdEnv + "=1 to fail instead")
	return ""
}

// cluster is a real etcd cluster of loopback members in a temporary
// directory, stopped when the test ends.
type cluster struct {
	t       testing.TB
	bin     string
	dir     string
	tls     *testPKI // nil: plain HTTP for clients
	members []*member
}

// member is one etcd server process of a cluster.
type member struct {
	name       string
	clientURL  string
	peerURL    string
	dataDir    string
	logPath    string
	args       []string
	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	stoppedErr error
}

// clusterOption changes how a cluster starts.
type clusterOption func(*cluster)

// withTLS makes the members serve clients over TLS only, with certificates
// from pki, and demand a client certificate signed by its CA.
func withTLS(pki *testPKI) clusterOption { return func(c *cluster) { c.tls = pki } }

// startCluster starts an n-member cluster on free loopback ports and waits
// until every member answers.
//
// The ports are free when chosen, but another test process may bind one
// before the member does: a member that fails to start on "address already
// in use" makes the whole cluster start again on new ports, a few times.
func startCluster(t testing.TB, n int, opts ...clusterOption) *cluster {
	t.Helper()
	const attempts = 5
	for attempt := 1; ; attempt++ {
		c, err := tryStartCluster(t, n, opts...)
		if err == nil {
			t.Cleanup(c.stopAll)
			return c
		}
		c.stopAll()
		if attempt == attempts || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("etcd cluster start %d of %d lost a port to another process; starting again on new ports", attempt, attempts)
	}
}

// tryStartCluster is one attempt of startCluster.
func tryStartCluster(t testing.TB, n int, opts ...clusterOption) (*cluster, error) {
	t.Helper()
	c := &cluster{t: t, bin: etcdBinary(t), dir: dataDir(t)}
	for _, o := range opts {
		o(c)
	}
	scheme := "http"
	if c.tls != nil {
		scheme = "https"
	}
	var initial []string
	for i := range n {
		m := &member{
			name:      fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, freePort(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		}
		m.dataDir = filepath.Join(c.dir, m.name)
		m.logPath = filepath.Join(c.dir, m.name+".log")
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for _, m := range c.members {
		m.args = []string{
			"--name", m.name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL,
			"--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", filepath.Base(c.dir),
			// etcd's defaults (100 ms, 1 s): a stopped leader is replaced
			// within about a second, and a loaded test machine does not
			// hold needless elections.
			"--heartbeat-interval", "100",
			"--election-timeout", "1000",
			"--logger", "zap",
			"--log-outputs", "stderr",
		}
		if c.tls != nil {
			m.args = append(m.args,
				"--cert-file", c.tls.serverCert,
				"--key-file", c.tls.serverKey,
				"--trusted-ca-file", c.tls.caCert,
				"--client-cert-auth")
		}
		c.start(m)
	}
	return c, c.healthy(c.members...)
}

// dataDir is a temporary directory for the members' data, in memory
// (/dev/shm) where there is one: etcd fsyncs every write, which on a
// loaded disk makes requests time out for reasons no test is about.
func dataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "credhost-etcd-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *cluster) start(m *member) {
	c.t.Helper()
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(c.bin, m.args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start etcd member %s: %v", m.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
}

// Endpoints are the members' client URLs.
func (c *cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL)
	}
	return eps
}

// stop stops member i (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (c *cluster) stop(i int) {
	m := c.members[i]
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// restart starts a stopped member i again with its data.
func (c *cluster) restart(i int) {
	c.t.Helper()
	c.start(c.members[i])
	c.waitHealthy(c.members[i])
}

func (c *cluster) stopAll() {
	for i := range c.members {
		c.stop(i)
	}
}

// client returns a client of the cluster (with the test client certificate
// under TLS), closed when the test ends.
func (c *cluster) client(eps ...string) *clientv3.Client {
	c.t.Helper()
	if len(eps) == 0 {
		eps = c.Endpoints()
	}
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: quietZap()}
	if c.tls != nil {
		cfg.TLS = c.tls.clientTLS(c.t)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		c.t.Fatalf("etcd client: %v", err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// waitHealthy waits up to 30 s until each of ms answers a linearizable read
// through its own endpoint.
func (c *cluster) waitHealthy(ms ...*member) {
	c.t.Helper()
	if err := c.healthy(ms...); err != nil {
		c.t.Fatal(err)
	}
}

// healthy is waitHealthy returning its failure instead.
func (c *cluster) healthy(ms ...*member) error {
	c.t.Helper()
	for _, m := range ms {
		cli := c.client(m.clientURL)
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := cli.Get(ctx, "health")
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(m.logPath)
				return fmt.Errorf("etcd member %s not healthy after 30s: %v\nlog tail:\n%s", m.name, err, tail(log, 3000))
			}
			m.mu.Lock()
			exited := m.exited
			m.mu.Unlock()
			select {
			case <-exited:
				log, _ := os.ReadFile(m.logPath)
				return fmt.Errorf("etcd member %s exited while starting\nlog tail:\n%s", m.name, tail(log, 3000))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// put stores value under key, failing the test on error.
func (c *cluster) put(key, value string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.client().Put(ctx, key, value); err != nil {
		c.t.Fatalf("put %s: %v", key, err)
	}
}

// get returns the value under key ("" when absent) and its ModRevision.
func (c *cluster) get(key string) (string, int64) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.client().Get(ctx, key)
	if err != nil {
		c.t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
}

// quietZap is the etcd client's logger in tests: none (the client logs
// every retry, which a test stopping members provokes on purpose).
func quietZap() *zap.Logger { return zap.NewNop() }
