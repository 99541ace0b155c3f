package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// FetchToken asks the daemon on socket for its token in one request, the
// way a one-shot command (`credhost token`, `credhost exec`) asks it: Dial
// and Token without Dial's health check, on a connection used once. The
// token request itself proves the daemon answers: its answer, or the
// interim 102 Processing the request asks for (InterimHeader) and the
// daemon sends when it has to wait (for a refresh, say), must come within
// the dial bound; after an interim answer the final one has the answer
// bound. With WithChain or WithChainOf the request carries
// the caller's chain, and a daemon of another chain answers 409, which is
// ErrChainMismatch here.
//
// The errors are Dial's and Token's: ErrUnavailable (no daemon answered in
// time, or it is not for this caller), ErrUntrusted, ErrChainMismatch, or
// a *ResponseError for the daemon's own error answers.
//
// A daemon older than the interim answers sends none: a token request that
// waits there for a refresh longer than the dial bound is given up, and
// the caller works directly (its own walk takes turns with the daemon's
// refresh through the store's locks).
func FetchToken(ctx context.Context, socket string, opts ...DialOption) (Token, error) {
	o, err := dialSetup(socket, opts)
	if err != nil {
		return Token{}, err
	}
	var t Token
	err = once(ctx, socket, o, http.MethodGet, PathToken, &t)
	return t, err
}

// maxInterim bounds the interim answers before the final one, as net/http
// does: a daemon sends one.
const maxInterim = 5

// maxHeads bounds the heads of an answer, interim ones included, as
// net/http's Transport bounds a response's (MaxResponseHeaderBytes).
const maxHeads = 64 << 10

// once sends one request without a body on a connection of its own and
// decodes a 2xx answer into out, as Client.do does, with FetchToken's
// bounds: connecting, sending and the first answer (interim or final)
// within o.dialTimeout, the final answer within o.answerBound of an
// interim one. The request is HTTP/1.1 written by hand and the answer
// read by net/http's parser, on the calling goroutine: no transport, no
// connection pool and none of the goroutines they start, which a process
// that asks once would start only to end them.
func once(ctx context.Context, socket string, o dialOptions, method, path string, out any) error {
	unavailable := func(what string, err error) error {
		return fmt.Errorf("%w: %s: %s %s: %s: %w", ErrUnavailable, socket, method, path, what, err)
	}
	start := time.Now()
	dctx, cancel := context.WithDeadline(ctx, start.Add(o.dialTimeout))
	var d net.Dialer
	conn, err := d.DialContext(dctx, "unix", socket)
	cancel()
	if err != nil {
		return unavailable("connect", err)
	}
	defer conn.Close()
	if err := PeerIsSelf(conn); err != nil {
		return fmt.Errorf("%w: %w", ErrUntrusted, err)
	}

	// The connection's deadline is the bound of the moment; an ended ctx
	// (an interrupt) moves it to the past, for good.
	var mu sync.Mutex
	ended := false
	setDeadline := func(t time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if !ended {
			if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
				t = dl
			}
			_ = conn.SetDeadline(t)
		}
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		ended = true
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
	defer stop()
	gone := func(what string, err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return unavailable(what, err)
	}

	setDeadline(start.Add(o.dialTimeout))
	// The host part is a name only; Connection: close, as nothing else
	// is asked on this connection.
	req := method + " " + path + " HTTP/1.1\r\nHost: credhost\r\n" + InterimHeader + ": 102\r\n"
	if o.chain != "" {
		req += ChainHeader + ": " + o.chain + "\r\n"
	}
	req += "Connection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return gone("send", err)
	}
	// An answer is a few hundred bytes; a line longer than the buffer
	// is still read whole. All that is read is bounded, heads included
	// (net/http's parser bounds none), as a transport bounds them.
	br := bufio.NewReaderSize(io.LimitReader(conn, maxHeads+maxAnswer), 1024)
	var resp *http.Response
	for interim := 0; ; interim++ {
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				// The parser quotes what it could not parse: a line
				// the peer wrote, which is not logged.
				err = errors.New("not an HTTP answer")
			}
			return gone("no answer", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// The daemon answers, and works on it: the final answer gets the
		// answer bound.
		if interim == maxInterim {
			return unavailable("answer", errors.New("too many interim answers"))
		}
		if interim == 0 {
			// Measured from the first: more do not stretch it.
			setDeadline(time.Now().Add(o.answerBound))
		}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return gone("read the answer", err)
	}
	if e := errorAnswer(resp.StatusCode, data); e != nil {
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		// The decoder quotes no value, only types and offsets.
		return unavailable("the answer is not what it should be", err)
	}
	return nil
}
