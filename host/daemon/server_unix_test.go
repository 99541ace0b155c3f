//go:build unix

package daemon

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawConn dials the server's socket directly, for requests net/http's
// client would not send.
func rawConn(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestServerEndsARequestWhoseBodyNeverComes: a client that announces a
// refresh body and never sends it is answered, not waited on forever.
func TestServerEndsARequestWhoseBodyNeverComes(t *testing.T) {
	t.Parallel()
	srv := NewServer(Options{Host: tokenHost(t, func() string { return "token-1" })})
	_, path := serveIn(t, srv)
	for name, sent := range map[string]string{
		"nothing of it":          "{",
		"more than a body holds": strings.Repeat(" ", maxBody+10),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := rawConn(t, path)
			if _, err := c.Write([]byte("POST " + PathRefresh + " HTTP/1.1\r\nHost: credhost\r\nContent-Length: 100000\r\n\r\n" + sent)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(time.Minute))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to a request whose body never came: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
		})
	}
}

// TestServerRefusesHugeHeaders: a request's headers are bounded far below
// net/http's default of a megabyte per connection.
func TestServerRefusesHugeHeaders(t *testing.T) {
	t.Parallel()
	srv := NewServer(Options{Host: tokenHost(t, func() string { return "token-1" })})
	c, _ := serveIn(t, srv)
	req, _ := http.NewRequest(http.MethodGet, "http://credhost"+PathHealth, nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 256<<10))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d for 256 KiB of headers, want 431", resp.StatusCode)
	}
}

// TestServerStopsWithAClientThatNeverReads: a client that sends requests
// and never reads the answers does not hold up the daemon's shutdown.
func TestServerStopsWithAClientThatNeverReads(t *testing.T) {
	t.Parallel()
	srv := NewServer(Options{Host: tokenHost(t, func() string { return "token-1" })})
	defer srv.Close()
	path := filepath.Join(privateTempDir(t), "credhost.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 30*time.Second) }()
	c := rawConn(t, path)
	go func() {
		req := []byte("GET " + PathHealth + " HTTP/1.1\r\nHost: credhost\r\n\r\n")
		for {
			if _, err := c.Write(req); err != nil {
				return
			}
		}
	}()
	time.Sleep(time.Second) // the answers fill the socket's buffer
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve still running a minute after it was told to stop")
	}
}
