package host

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Transport returns an http.RoundTripper that sets `Authorization: Bearer`
// from Token on each request and, on a 401, forces one refresh of the token
// it used and replays the request once with the new token (rule 10). It
// decides by status code alone, never by error text. A request whose body
// cannot be replayed (no GetBody) gets the 401 back as is. base nil means
// http.DefaultTransport.
func (h *Host) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{h: h, base: base}
}

type transport struct {
	h    *Host
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	res, err := t.h.Token(ctx)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("credhost: %w", err)
	}
	resp, err := t.base.RoundTrip(withBearer(req, res.Credential.AccessToken))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil
	}
	fresh, err := t.h.RefreshAfterUnauthorized(ctx, res.Credential.AccessToken)
	if err != nil || fresh.Credential.AccessToken == res.Credential.AccessToken {
		t.h.logger.Warn("401 from the API and no new token to retry with", "provider", res.Provider, "error", fmt.Sprint(err))
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
	return t.base.RoundTrip(withBearer(replay, fresh.Credential.AccessToken))
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
