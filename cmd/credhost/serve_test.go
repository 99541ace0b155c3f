package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credhost/credhost/host/daemon"
)

// These tests run `credhost serve` (the real binary) on a real socket, with
// the real file store and the rotating token endpoint, and talk to it over
// HTTP as any client would.

// syncBuffer is a bytes.Buffer safe to read while the daemon writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemonRun is credhost serve running in the background.
type daemonRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	socket string
	stderr *syncBuffer
	done   chan struct{}
	code   int
	client *http.Client
}

// socketDir is a fresh private directory with a short path: a unix
// socket's path must fit in about 100 bytes, which t.TempDir's may not.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startServe starts credhost serve on socket with args, without waiting.
func (s *sandbox) startServe(socket string, args ...string) *daemonRun {
	s.t.Helper()
	d := &daemonRun{t: s.t, socket: socket, stderr: &syncBuffer{}, done: make(chan struct{}), client: unixClient(socket)}
	d.cmd = exec.Command(credhostBin, append([]string{"serve", "--socket", socket}, args...)...)
	d.cmd.Env, d.cmd.Dir = s.env, s.home
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() {
		d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		close(d.done)
	}()
	s.t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
	})
	return d
}

// serve starts credhost serve on a socket of its own and waits until it
// answers.
func (s *sandbox) serve(args ...string) *daemonRun {
	s.t.Helper()
	d := s.startServe(filepath.Join(socketDir(s.t), "credhost.sock"), args...)
	d.waitReady()
	return d
}

func (d *daemonRun) waitReady() {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			d.t.Fatalf("credhost serve exited %d before answering; stderr:\n%s", d.code, d.stderr)
		default:
		}
		if resp, err := d.client.Get("http://credhost" + daemon.PathHealth); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("credhost serve does not answer on %s; stderr:\n%s", d.socket, d.stderr)
}

// wait waits for the daemon to exit and returns its exit code.
func (d *daemonRun) wait() int {
	d.t.Helper()
	select {
	case <-d.done:
		return d.code
	case <-time.After(30 * time.Second):
		d.t.Fatalf("credhost serve did not exit; stderr:\n%s", d.stderr)
		return -1
	}
}

func unixClient(socket string) *http.Client {
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			MaxIdleConnsPerHost: 256,
		},
	}
}

// call sends a request and decodes a 200 answer into out, or returns the
// status and the error body.
func (d *daemonRun) call(method, path, body string, out any) (int, daemon.Error) {
	d.t.Helper()
	req, err := http.NewRequest(method, "http://credhost"+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		d.t.Errorf("%s %s: %v", method, path, err)
		return 0, daemon.Error{}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e daemon.Error
	if resp.StatusCode != http.StatusOK {
		json.Unmarshal(data, &e)
		return resp.StatusCode, e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			d.t.Errorf("%s %s: %v in %q", method, path, err, data)
		}
	}
	return resp.StatusCode, e
}

func (d *daemonRun) token() daemon.Token {
	d.t.Helper()
	var tok daemon.Token
	if code, e := d.call(http.MethodGet, daemon.PathToken, "", &tok); code != http.StatusOK {
		d.t.Fatalf("GET /v1/token: %d %+v; stderr:\n%s", code, e, d.stderr)
	}
	return tok
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
