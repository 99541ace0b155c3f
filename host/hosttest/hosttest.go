// Package hosttest holds the helpers the tests of credhost's host and of
// its command share: waiting for a condition with a generous bound, the
// process ids a test plugin writes down, and loopback test servers on an
// address of the test's choosing. It is for tests only.
package hosttest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// WaitFor polls cond until it holds, and fails the test, naming what it
// waited for, when it does not hold within the bound. The bound is
// generous: it only ends a test that would otherwise hang.
func WaitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ReadPids waits (up to 20 s) for path to hold process ids separated by
// white space, as a test plugin writes them (to a temporary name first,
// then renamed), and returns them.
func ReadPids(t testing.TB, path string) []int {
	t.Helper()
	var pids []int
	WaitFor(t, "process ids in "+path, 20*time.Second, func() bool {
		data, err := os.ReadFile(path)
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			return false
		}
		pids = pids[:0]
		for f := range strings.FieldsSeq(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s: %q is not a list of process ids", path, data)
			}
			pids = append(pids, pid)
		}
		return true
	})
	return pids
}

// ServeOn starts an httptest server for h on addr ("127.0.0.2:0": Linux
// routes all of 127/8 to the loopback interface), with TLS when tls is
// set, and closes it when the test ends. It skips the test when addr
// cannot be listened on.
func ServeOn(t testing.TB, addr string, tls bool, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}
