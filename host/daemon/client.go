package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/sdk"
)

// ErrUnavailable means there is no daemon to use: none answers on the
// socket within the dial bound, the one that answers is not for this
// caller (another user's, another chain), or it could not serve the
// request. The caller should work directly, as if no daemon ran.
var ErrUnavailable = errors.New("no credhost daemon to use")

// ErrChainMismatch means the daemon's chain is not the caller's (another
// config, or an environment that sets a variable the chain reads to
// another value): its token is not the one the caller would read, so the
// caller works directly. It wraps ErrUnavailable.
var ErrChainMismatch = fmt.Errorf("%w: the daemon's chain is not this process's (another config, or another value of a variable the chain reads)", ErrUnavailable)

// ErrUntrusted means the socket, or the daemon answering on it, is not
// this user's: another local user made the socket's directory first (the
// default one under the shared temporary directory, when $XDG_RUNTIME_DIR
// is unset) or runs the daemon, and would hand the caller a token of their
// choosing. The caller works directly; it is worth a warning. It wraps
// ErrUnavailable.
var ErrUntrusted = fmt.Errorf("%w: the socket or the daemon behind it is not this user's", ErrUnavailable)

// Bounds of a Client. Dial must be quick, as a caller that finds no daemon
// falls back to working directly, and a daemon that does not answer its
// health check (FetchToken: its token request) within DefaultDialTimeout is
// as good as none. An answer may include a refresh, bounded by the
// daemon's refresh.timeout, so it gets much longer.
const (
	DefaultDialTimeout   = 500 * time.Millisecond
	DefaultAnswerTimeout = 90 * time.Second
)

// maxAnswer bounds the body of one answer: a token, a status of a few
// providers, or an error fit many times over.
const maxAnswer = 1 << 20

// Client talks to a running `credhost serve` over its socket. It is safe
// for concurrent use.
type Client struct {
	socket string
	chain  string
	answer time.Duration
	hc     *http.Client
	health Health
}

// DialOption configures Dial.
type DialOption func(*dialOptions)

type dialOptions struct {
	chain       string
	chainOf     func() string
	dialTimeout time.Duration
	answerBound time.Duration
}

// WithChain sends id (the caller's host.Host.ChainID) with every request,
// and makes Dial fail with ErrChainMismatch when the daemon reports
// another chain: the caller then gets no token of a chain that is not its
// own. Without it the daemon's token is served whatever its chain (a
// launcher that means to hand out the daemon's token).
func WithChain(id string) DialOption { return func(o *dialOptions) { o.chain = id } }

// WithChainOf is WithChain with the ID computed by id only once a socket
// worth asking is there: a caller with no daemon running, the common cold
// start, never computes it (a chain ID costs a JSON encoding and a hash).
func WithChainOf(id func() string) DialOption { return func(o *dialOptions) { o.chainOf = id } }

// WithDialTimeout bounds Dial: connecting and the health check that proves
// a daemon answers (default DefaultDialTimeout, also for d <= 0).
func WithDialTimeout(d time.Duration) DialOption {
	return func(o *dialOptions) { o.dialTimeout = d }
}

// WithAnswerTimeout bounds each later request, from sending it to the end
// of the answer (default DefaultAnswerTimeout, also for d <= 0). Give it at least the
// daemon's refresh.timeout: a token request may wait for a refresh.
func WithAnswerTimeout(d time.Duration) DialOption {
	return func(o *dialOptions) { o.answerBound = d }
}

// Dial connects to the daemon listening on socket (DefaultSocket() for
// the usual one) and checks that it answers, within the dial bound. The
// error wraps ErrUnavailable when no daemon answers there, and is
// ErrChainMismatch when WithChain was given and the daemon's chain differs.
// A caller that asks for one token and exits uses FetchToken: one request,
// no health check.
func Dial(ctx context.Context, socket string, opts ...DialOption) (*Client, error) {
	o, err := dialSetup(socket, opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		socket: socket,
		chain:  o.chain,
		answer: o.answerBound,
		hc: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				conn, err := d.DialContext(ctx, "unix", socket)
				if err != nil {
					return nil, err
				}
				if err := PeerIsSelf(conn); err != nil {
					conn.Close()
					return nil, fmt.Errorf("%w: %w", ErrUntrusted, err)
				}
				return conn, nil
			},
			DisableCompression:  true,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}},
	}
	// The health check has no chain header: a daemon of another chain
	// answers it, and saying so here is clearer than a 409 later.
	var h Health
	if err := c.do(ctx, o.dialTimeout, http.MethodGet, PathHealth, nil, false, &h); err != nil {
		c.Close()
		if errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: health check: %w", ErrUnavailable, socket, err)
	}
	if o.chain != "" && h.Chain != o.chain {
		c.Close()
		return nil, fmt.Errorf("%w (daemon pid %d, config %s)", ErrChainMismatch, h.PID, h.Config)
	}
	c.health = h
	return c, nil
}

// Daemon is the daemon's health as Dial found it: its pid, chain and
// config source.
func (c *Client) Daemon() Health { return c.health }

// Socket is the socket the client dialled.
func (c *Client) Socket() string { return c.socket }

// Close drops the client's idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Token returns the daemon's usable token (GET /v1/token): what `credhost
// token --json` prints. A token the daemon could not refresh comes back
// with Degraded set, as from Host.Token.
func (c *Client) Token(ctx context.Context) (Token, error) {
	var t Token
	err := c.do(ctx, c.answer, http.MethodGet, PathToken, nil, true, &t)
	return t, err
}

// Refresh asks the daemon for a forced refresh (POST /v1/refresh). With
// rejected set to the fingerprint of a token the caller saw refused (a
// 401), a daemon that already holds another token returns that one
// without a refresh, so many callers that saw one token rejected cause one
// refresh. An empty rejected forces a refresh, as `credhost refresh` does.
func (c *Client) Refresh(ctx context.Context, rejected string) (Token, error) {
	var body []byte
	if rejected != "" {
		body, _ = json.Marshal(RefreshRequest{Rejected: rejected}) // cannot fail
	}
	var t Token
	err := c.do(ctx, c.answer, http.MethodPost, PathRefresh, body, true, &t)
	return t, err
}

// Status returns every provider's state as the daemon reads it (GET
// /v1/status): what `credhost status --json` prints.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, c.answer, http.MethodGet, PathStatus, nil, true, &s)
	return s, err
}

// Health asks the daemon how it is (GET /v1/health).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, c.answer, http.MethodGet, PathHealth, nil, false, &h)
	return h, err
}

// Transport is host.Host.Transport over the daemon: each request gets the
// daemon's token, and a 401 asks the daemon for one refresh of the token
// that was refused (naming it by fingerprint), then replays the request
// once. base nil means http.DefaultTransport.
func (c *Client) Transport(base http.RoundTripper) http.RoundTripper {
	return host.NewTransport(c.Source(), base, nil)
}

// Source is the client as a host.TokenSource, for host.NewTransport.
func (c *Client) Source() host.TokenSource { return source{c} }

type source struct{ c *Client }

func (s source) Token(ctx context.Context) (host.Result, error) {
	t, err := s.c.Token(ctx)
	if err != nil {
		return host.Result{}, err
	}
	return t.Result(), nil
}

func (s source) RefreshAfterUnauthorized(ctx context.Context, token string) (host.Result, error) {
	t, err := s.c.Refresh(ctx, sdk.Fingerprint(token))
	if err != nil {
		return host.Result{}, err
	}
	return t.Result(), nil
}

// Result is t as a host.Result, as Host.Token would have returned it.
func (t Token) Result() host.Result {
	res := host.Result{
		Credential: sdk.Credential{AccessToken: t.AccessToken},
		Provider:   t.Provider,
		Refreshed:  t.Refreshed,
		Degraded:   t.Degraded,
	}
	if t.ExpiresAt != nil {
		res.Credential.ExpiresAt = *t.ExpiresAt
	}
	if t.Degraded {
		reason := t.DegradedReason
		if reason == "" {
			reason = "the daemon gave no reason"
		}
		res.DegradedReason = errors.New(reason)
	}
	return res
}

// ResponseError is an answer of the daemon that is not 2xx. Its message is
// the daemon's; errors.Is matches host.ErrNoCredential, host.ErrRefreshFailed
// or host.ErrConfig by its code, ErrChainMismatch for a chain mismatch, and
// ErrUnavailable for any other code (another user's daemon, a request it
// did not understand, an internal fault): work directly then.
type ResponseError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the daemon's error: its message, code and the exit code the
	// equivalent credhost command exits with.
	Body Error
}

func (e *ResponseError) Error() string {
	if e.Body.Error != "" {
		return e.Body.Error
	}
	return fmt.Sprintf("credhost daemon answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// Unwrap maps the daemon's code to the error callers branch on.
func (e *ResponseError) Unwrap() error {
	switch e.Body.Code {
	case CodeNoCredential:
		return host.ErrNoCredential
	case CodeRefreshFailed:
		return host.ErrRefreshFailed
	case CodeConfig:
		return host.ErrConfig
	case CodeChainMismatch:
		return ErrChainMismatch
	}
	return ErrUnavailable
}

// do sends one request within bound and decodes a 2xx answer into out. A
// request that gets no answer is ErrUnavailable; an answer that is not 2xx
// a *ResponseError.
func (c *Client) do(ctx context.Context, bound time.Duration, method, path string, body []byte, withChain bool, out any) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// The host part is a name only: the transport dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://credhost"+path, rd)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if withChain && c.chain != "" {
		req.Header.Set(ChainHeader, c.chain)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// The url.Error's text holds no secret: a method, the path and
		// the dial or timeout error.
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%w: %s: read the answer to %s %s: %w", ErrUnavailable, c.socket, method, path, err)
	}
	if e := errorAnswer(resp.StatusCode, data); e != nil {
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		// The decoder quotes no value, only types and offsets.
		return fmt.Errorf("%w: %s: the answer to %s %s is not what it should be: %w", ErrUnavailable, c.socket, method, path, err)
	}
	return nil
}

// dialSetup applies opts over the default bounds, checks that socket may
// be trusted, and computes the chain to send: what Dial and FetchToken do
// before they connect. The daemon is trusted only in a directory of this
// user's (as Listen makes it) and only when it runs as this user (checked
// on each connection).
func dialSetup(socket string, opts []DialOption) (dialOptions, error) {
	o := dialOptions{dialTimeout: DefaultDialTimeout, answerBound: DefaultAnswerTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	// A bound of zero or less would fail every request at once.
	if o.dialTimeout <= 0 {
		o.dialTimeout = DefaultDialTimeout
	}
	if o.answerBound <= 0 {
		o.answerBound = DefaultAnswerTimeout
	}
	if err := TrustedSocket(socket); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return o, fmt.Errorf("%w: %s: %w", ErrUnavailable, socket, err)
		}
		return o, fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	if o.chainOf != nil {
		o.chain = o.chainOf()
	}
	return o, nil
}

// errorAnswer is the *ResponseError an answer with a status outside 2xx
// stands for, with its JSON body (an answer whose body is not the daemon's
// Error is an internal error, exit code 2), or nil for a success.
func errorAnswer(status int, body []byte) *ResponseError {
	if status/100 == 2 {
		return nil
	}
	e := &ResponseError{StatusCode: status}
	if json.Unmarshal(body, &e.Body) != nil {
		e.Body = Error{Code: CodeInternal, ExitCode: 2}
	}
	return e
}
