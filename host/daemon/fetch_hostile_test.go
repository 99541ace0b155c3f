package daemon

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hostileDaemon is a fake daemon (a same-user process bound to the
// socket, or a broken daemon): it reads the request's head and then runs
// answer on the raw connection. Only a fake can send what no credhost
// serve sends.
func hostileDaemon(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	p := socketPath(t)
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
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				answer(c)
			}()
		}
	}()
	return p
}

// The answer's head is bounded as net/http's Transport bounds it (10 MB,
// MaxResponseHeaderBytes' default): a daemon that streams one endless
// header line is given up, not buffered into the client's memory for
// the whole answer bound.
func TestFetchTokenBoundsTheAnswersHead(t *testing.T) {
	t.Parallel()
	const limit = 64 << 20
	var wrote atomic.Int64
	p := hostileDaemon(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nX-Endless: ")
		chunk := []byte(strings.Repeat("a", 1<<16))
		for wrote.Load() < limit {
			n, err := c.Write(chunk)
			wrote.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	_, err := FetchToken(context.Background(), p, WithDialTimeout(generous), WithAnswerTimeout(4*generous))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("FetchToken: %v; want ErrUnavailable", err)
	}
	if n := wrote.Load(); n > 16<<20 {
		t.Errorf("the client read %d MB of one header line before giving up; want it bounded (net/http's Transport: 10 MB)", n>>20)
	}
}

// The answer bound bounds the answer: a daemon that keeps saying it is
// working (interim answers, each just within the bound) does not stretch
// the wait to a multiple of it.
func TestFetchTokenAnswerBoundHoldsAcrossInterimAnswers(t *testing.T) {
	t.Parallel()
	const bound = 400 * time.Millisecond
	p := hostileDaemon(t, func(c net.Conn) {
		for range 20 {
			if _, err := io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\n"); err != nil {
				return
			}
			time.Sleep(bound * 3 / 4)
		}
	})
	start := time.Now()
	_, err := FetchToken(context.Background(), p, WithDialTimeout(bound), WithAnswerTimeout(bound))
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("FetchToken: %v; want ErrUnavailable", err)
	}
	// The dial bound plus one answer bound, with room for a loaded machine.
	if took > 2*bound+bound*3/4+bound/2 {
		t.Errorf("FetchToken waited %v with a %v dial bound and a %v answer bound: each interim answer restarted the answer bound", took, bound, bound)
	}
}

// An interrupt ends the wait after an interim answer as before it.
func TestFetchTokenEndsWithItsContextAfterAnInterimAnswer(t *testing.T) {
	t.Parallel()
	p := hostileDaemon(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\n")
		time.Sleep(4 * generous)
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := FetchToken(ctx, p, WithDialTimeout(generous), WithAnswerTimeout(time.Hour))
	if took := time.Since(start); took > generous {
		t.Errorf("FetchToken took %v after its context ended", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("FetchToken: %v; want context.Canceled", err)
	}
}

// Whatever a broken daemon answers (a malformed head, a chunked body
// larger than any answer, a body cut short, an answer then garbage), the
// client gets an error that lets it work directly, or the daemon's error,
// and never the body's bytes in its message.
func TestFetchTokenOnBrokenAnswers(t *testing.T) {
	t.Parallel()
	secret := "sk-ant-oat01-SECRETSECRETSECRET"
	for _, tc := range []struct {
		name, answer string
		fallBack     bool
	}{
		{"garbage", "SSH-2.0-OpenSSH\r\n", true},
		{"cut head", "HTTP/1.1 200 OK\r\nContent-Length: 5", true},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"access_token\":\"" + secret, true},
		{"chunked, bad JSON", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"acc\r\n0\r\n\r\n", true},
		{"bad expiry quoting the token", "HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n{\"access_token\":\"x\",\"expires_at\":\"" + secret + "\"}", true},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", true},
		{"HTTP/0.9-ish", secret + "\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := hostileDaemon(t, func(c net.Conn) { _, _ = io.WriteString(c, tc.answer) })
			tok, err := FetchToken(context.Background(), p, WithDialTimeout(generous), WithAnswerTimeout(generous))
			if err == nil {
				t.Fatalf("FetchToken = %+v; want an error", tok)
			}
			if got := errors.Is(err, ErrUnavailable); got != tc.fallBack {
				t.Errorf("FetchToken: %v; falls back: %v, want %v", err, got, tc.fallBack)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error quotes the answer's secret: %v", err)
			}
		})
	}
}

// A connection that asked for an interim answer serves a later request
// (keep-alive, as curl or Python's http.client reuse one) with no stray
// interim answer.
func TestServerKeepAliveAfterAnInterimAnswer(t *testing.T) {
	t.Parallel()
	p := socketPath(t)
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		working(w, r, func() { time.Sleep(3 * interimAfter) })
		writeJSON(w, http.StatusOK, Token{AccessToken: "tok"})
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	conn, err := net.Dial("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(generous))
	br := bufio.NewReader(conn)
	for i, ask := range []bool{true, false, true} {
		req := "GET /v1/token HTTP/1.1\r\nHost: credhost\r\n"
		if ask {
			req += InterimHeader + ": 102\r\n"
		}
		if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if (resp.StatusCode == http.StatusProcessing) != ask {
			t.Fatalf("request %d (asked for an interim answer: %v): first answer %d", i, ask, resp.StatusCode)
		}
		if ask {
			if resp, err = http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			}
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
}
