package host

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Transport returns an http.RoundTripper that sets `Authorization: Bearer`
// from Token on each request and, on a 401, forces one refresh of the token
// it used and replays the request once with the new token (the
// reactive-refresh rule). It decides by status code alone, never by error
// text. A request whose body cannot be replayed (no GetBody) gets the 401
// back as is. base nil means http.DefaultTransport.
//
// The token goes only to the origin (scheme, host and port) of the request
// the caller made: a redirect to another host, port or scheme (https to
// http included) is followed without it, and a 401 there refreshes nothing.
func (h *Host) Transport(base http.RoundTripper) http.RoundTripper {
	return NewTransport(h, base, h.logger)
}

// TokenSource is where a Transport gets its token: a Host, or a client of
// `credhost serve` that asks the daemon's.
type TokenSource interface {
	// Token returns a usable token.
	Token(ctx context.Context) (Result, error)
	// RefreshAfterUnauthorized handles a 401 for token: one refresh, unless
	// the source already holds a different token, which it returns.
	RefreshAfterUnauthorized(ctx context.Context, token string) (Result, error)
}

// NewTransport is Host.Transport over any TokenSource: the same
// origin-only Authorization and the same one refresh and replay on a 401.
// logger gets the warning of a 401 with no new token to retry with; nil
// discards it. base nil means http.DefaultTransport.
func NewTransport(src TokenSource, base http.RoundTripper, logger hclog.Logger) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &transport{src: src, base: base, logger: logger}
}

type transport struct {
	src    TokenSource
	base   http.RoundTripper
	logger hclog.Logger
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The bearer token goes only where the caller sent the request. Each
	// redirect hop comes here as a new request; net/http strips an
	// Authorization header on a hop to another host, but this one is added
	// below that, so the rule is kept here: a hop to another host, port or
	// scheme (https to http included) goes on without the token, and a 401
	// there forces no refresh.
	if !sameOrigin(firstRequest(req).URL, req.URL) {
		return t.send(req, req)
	}
	ctx := req.Context()
	res, err := t.src.Token(ctx)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("credhost: %w", err)
	}
	resp, err := t.send(req, withBearer(req, res.Credential.AccessToken))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil
	}
	fresh, err := t.src.RefreshAfterUnauthorized(ctx, res.Credential.AccessToken)
	if err != nil || fresh.Credential.AccessToken == res.Credential.AccessToken {
		t.logger.Warn("401 from the API and no new token to retry with", "provider", res.Provider, "error", fmt.Sprint(err))
		return resp, nil
	}
	replay := req.Clone(ctx)
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		replay.Body = body
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.send(req, withBearer(replay, fresh.Credential.AccessToken))
}

// send sends out, made from req, through the base transport. The next
// redirect hop finds the original request through Response.Request, so
// it is set to req when the base left it unset (a caching or mocking
// layer may): without it a hop would look like a request of its own and
// get the token, wherever it points.
func (t *transport) send(req, out *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(out)
	if resp != nil && resp.Request == nil {
		resp.Request = req
	}
	return resp, err
}

// firstRequest walks a redirect hop back to the request the caller made:
// net/http sets Response on each hop to the redirect that led there.
func firstRequest(req *http.Request) *http.Request {
	for range 100 { // net/http stops after 10 redirects; this only bounds a cycle
		if req.Response == nil || req.Response.Request == nil {
			break
		}
		req = req.Response.Request
	}
	return req
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (an absent port is the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// withBearer returns a copy of req with the token set; RoundTrippers must
// not modify the caller's request.
func withBearer(req *http.Request, token string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// RefreshAfterUnauthorized handles a 401 for token: it forces one refresh of
// that token, unless the chain already yields a different one (another
// caller or process refreshed first), which is returned instead.
func (h *Host) RefreshAfterUnauthorized(ctx context.Context, token string) (Result, error) {
	return h.forceRefresh(ctx, token)
}
