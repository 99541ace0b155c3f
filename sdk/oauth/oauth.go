// Package oauth is the OAuth 2.0 refresh_token grant (RFC 6749 §6) that
// refreshing credhost providers share, so each store only reads and writes
// and none re-implements the token request.
//
// An optional helper: a provider that refreshes may use it; the contract a
// provider implements is package sdk.
//
// It is hand-written rather than golang.org/x/oauth2 because credhost needs
// three things x/oauth2 does not give: a JSON request body (Anthropic's token
// endpoint takes JSON, as Claude Code sends it), Retry-After on 429/503
// surfaced to the caller, and exactly one request per refresh (x/oauth2's
// auth-style auto-detection retries with the same refresh token, which a
// rotating server treats as reuse and answers by revoking the token family).
//
// A Client is safe for concurrent use; it keeps no state between requests.
//
// Errors: every failure is an *Error. A rejected refresh token (OAuth error
// invalid_grant) also matches sdk.ErrInvalidGrant with errors.Is. No error
// carries a token: every string from the server (error, error_description,
// a content type, a redirect's host) is scrubbed of the tokens sent, limited
// to printable characters and cut short. A redirect is never followed: a
// 3xx answer is an *Error naming the status and the Location's host.
package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/credhost/credhost/sdk"
)

// Body formats for Config.BodyFormat.
const (
	// BodyForm is application/x-www-form-urlencoded, as RFC 6749 requires.
	BodyForm = "form"
	// BodyJSON is application/json, as Anthropic's token endpoint takes.
	BodyJSON = "json"
)

const (
	// defaultTimeout bounds one token request when the config sets none: long
	// enough for a slow endpoint, short enough that an agent waiting on
	// `credhost token` is not stuck.
	defaultTimeout = 30 * time.Second
	// maxResponse caps what is read of a token response: real ones are a few
	// hundred bytes; a multi-megabyte answer is an error page or an attack.
	maxResponse = 1 << 20
	// UserAgent is sent with every token request.
	UserAgent = "credhost-oauth/1"
)

// Client sends refresh_token grants to one token endpoint.
type Client struct {
	cfg  sdk.OAuthConfig
	http *http.Client
	now  func() time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces http.DefaultClient (its Timeout is ignored: the
// config's timeout applies per request). The client is copied, and the copy
// never follows a redirect, whatever c's CheckRedirect says.
func WithHTTPClient(c *http.Client) Option { return func(cl *Client) { cl.http = c } }

// WithNow replaces time.Now, which turns expires_in into an expiry.
func WithNow(now func() time.Time) Option { return func(cl *Client) { cl.now = now } }

// New returns a client for cfg. It checks cfg with CheckConfig, and a
// client needs a token URL: a config built by hand is held to the same
// rules as one the host loaded.
func New(cfg sdk.OAuthConfig, opts ...Option) (*Client, error) {
	if cfg.TokenURL == "" {
		return nil, sdk.InvalidConfig("%w", &ConfigError{Key: "token_url", Err: CheckTokenURL(cfg.TokenURL)})
	}
	if err := CheckConfig(cfg); err != nil {
		return nil, sdk.InvalidConfig("%w", err)
	}
	if cfg.BodyFormat == "" {
		cfg.BodyFormat = BodyForm
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	c := &Client{cfg: cfg, http: http.DefaultClient, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	// A redirect would re-send the refresh token to wherever the Location
	// points (another host, or plain http), and whatever answered there
	// would be saved as the credential. So no redirect is ever followed:
	// the 3xx itself comes back and fails the refresh.
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	return c, nil
}

// ConfigError is a problem with one key of the shared oauth config.
type ConfigError struct {
	// Key is the key as the config spells it: "body" or "token_url".
	Key string
	// Err says what is wrong, quoting the value.
	Err error
}

func (e *ConfigError) Error() string { return "oauth " + e.Key + ": " + e.Err.Error() }

// Unwrap returns what is wrong.
func (e *ConfigError) Unwrap() error { return e.Err }

// CheckConfig is the one check of the shared oauth config, made by the
// host when it loads a config and by New: BodyFormat must be empty (form),
// form or json, and TokenURL, when set, must pass CheckTokenURL. (A config
// without a token URL is valid: nothing refreshes.) The error is a
// *ConfigError naming the key.
func CheckConfig(cfg sdk.OAuthConfig) error {
	switch cfg.BodyFormat {
	case "", BodyForm, BodyJSON:
	default:
		return &ConfigError{Key: "body", Err: fmt.Errorf("%q: want %s or %s", cfg.BodyFormat, BodyForm, BodyJSON)}
	}
	if cfg.TokenURL != "" {
		if err := CheckTokenURL(cfg.TokenURL); err != nil {
			return &ConfigError{Key: "token_url", Err: err}
		}
	}
	return nil
}

// CheckTokenURL reports whether raw may be a token endpoint: an absolute
// https URL, or plain http only to a loopback host (127.0.0.0/8, ::1,
// localhost), which tests and local proxies use. Anything else would send
// the refresh token, and take the new credential, over an unencrypted,
// unauthenticated connection.
func CheckTokenURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		// Quoted as given (so the host can quote it as the config file
		// says), but never with a password in it.
		shown := raw
		if _, ok := u.User.Password(); ok {
			shown = u.Redacted()
		}
		return fmt.Errorf("%q: plain http is allowed only to a loopback host (127.0.0.1, ::1, localhost); use https", shown)
	}
	return nil
}

// isLoopback reports whether host (no port) is localhost or a loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Error is a failed token request.
type Error struct {
	// StatusCode is the HTTP status; 0 when no response arrived.
	StatusCode int
	// Code is the OAuth error code ("invalid_grant"), if the server sent one.
	// Like Description it comes from the server, so it is scrubbed of the
	// tokens sent, printable and cut short.
	Code string
	// Description is the server's error_description, scrubbed likewise.
	Description string
	// RetryAfter is the server's Retry-After on 429 or 503; 0 when absent.
	RetryAfter time.Duration
	// Err is the underlying cause (network error, bad JSON), if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("token endpoint")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, " (%s)", e.Description)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// RetryDelay is the server's Retry-After (sdk.RetryDelayer), so the host
// waits that long before the next attempt, even across the plugin boundary.
func (e *Error) RetryDelay() time.Duration { return e.RetryAfter }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes an invalid_grant error match sdk.ErrInvalidGrant.
func (e *Error) Is(target error) bool {
	return target == sdk.ErrInvalidGrant && e.Code == "invalid_grant"
}

// tokenResponse is RFC 6749 §5.1 / §5.2.
type tokenResponse struct {
	AccessToken      string          `json:"access_token"`
	RefreshToken     string          `json:"refresh_token"`
	ExpiresIn        json.Number     `json:"expires_in"`
	Scope            string          `json:"scope"`
	TokenType        string          `json:"token_type"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
	ErrorURI         json.RawMessage `json:"error_uri"`
}

// Refresh exchanges old's refresh token for a new credential. The result keeps
// old's refresh token when the response has none (RFC 6749 §6 makes it
// optional; dropping it would log the user out for good), and keeps old's
// metadata and (absent a scope in the response) its scopes. Without
// expires_in in the response its expiry is unknown (zero): the host gives
// every refreshed credential without one its default_expires_in, whichever
// provider refreshed it. It sends exactly one request.
func (c *Client) Refresh(ctx context.Context, old sdk.Credential) (sdk.Credential, error) {
	if old.RefreshToken == "" {
		return sdk.Credential{}, &Error{Err: errors.New("no refresh token to refresh with")}
	}
	body, contentType, err := c.requestBody(old)
	if err != nil {
		return sdk.Credential{}, &Error{Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, bytes.NewReader(body))
	if err != nil {
		return sdk.Credential{}, &Error{Err: err}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)

	// The tokens the request carried: no string from the server reaches a
	// message without these taken out.
	sent := []string{old.RefreshToken, old.AccessToken}
	resp, err := c.http.Do(req)
	if err != nil {
		// net/http quotes what the server sent when it cannot parse it (a
		// malformed header line, say), so even a transport error is
		// scrubbed; the cause stays for errors.Is.
		return sdk.Credential{}, &Error{Err: &scrubbedError{msg: scrub(err.Error(), sent...), err: err}}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return sdk.Credential{}, &Error{StatusCode: resp.StatusCode, Err: redirectError(resp, sent)}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return sdk.Credential{}, &Error{StatusCode: resp.StatusCode, Err: &scrubbedError{msg: "read response: " + scrub(err.Error(), sent...), err: err}}
	}
	if len(raw) > maxResponse {
		return sdk.Credential{}, &Error{StatusCode: resp.StatusCode, Err: fmt.Errorf("response larger than %d bytes", maxResponse)}
	}
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), c.now())

	var tr tokenResponse
	jsonErr := decodeJSON(scrub(resp.Header.Get("Content-Type"), sent...), raw, &tr)
	if resp.StatusCode != http.StatusOK {
		e := &Error{StatusCode: resp.StatusCode, RetryAfter: retryAfter}
		if jsonErr == nil {
			e.Code, e.Description = scrubPair(tr.Error, tr.ErrorDescription, sent)
		}
		return sdk.Credential{}, e
	}
	if jsonErr != nil {
		return sdk.Credential{}, &Error{StatusCode: resp.StatusCode, Err: jsonErr}
	}
	if tr.Error != "" {
		code, desc := scrubPair(tr.Error, tr.ErrorDescription, sent)
		return sdk.Credential{}, &Error{StatusCode: resp.StatusCode, Code: code, Description: desc}
	}
	if tr.AccessToken == "" {
		return sdk.Credential{}, &Error{StatusCode: resp.StatusCode, Err: errors.New("response has no access_token")}
	}

	out := old.Clone()
	out.AccessToken = tr.AccessToken
	if tr.RefreshToken != "" {
		out.RefreshToken = tr.RefreshToken
	}
	out.ExpiresAt = time.Time{}
	if tr.ExpiresIn != "" {
		secs, err := tr.ExpiresIn.Float64()
		if err != nil || secs <= 0 || secs > 10*365*24*3600 {
			return sdk.Credential{}, &Error{StatusCode: resp.StatusCode, Err: fmt.Errorf("expires_in %q is not a positive number of seconds", scrub(tr.ExpiresIn.String(), sent...))}
		}
		out.ExpiresAt = c.now().Add(time.Duration(secs * float64(time.Second)))
	}
	if tr.Scope != "" {
		out.Scopes = strings.Fields(tr.Scope)
	}
	return out, nil
}

func (c *Client) requestBody(old sdk.Credential) ([]byte, string, error) {
	clientID, scopes := c.clientAndScopes(old)
	scope := strings.Join(scopes, " ")
	if c.cfg.BodyFormat == BodyJSON {
		m := map[string]string{"grant_type": "refresh_token", "refresh_token": old.RefreshToken}
		if clientID != "" {
			m["client_id"] = clientID
		}
		if scope != "" {
			m["scope"] = scope
		}
		b, err := json.Marshal(m)
		return b, "application/json", err
	}
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old.RefreshToken}}
	if clientID != "" {
		v.Set("client_id", clientID)
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	return []byte(v.Encode()), "application/x-www-form-urlencoded", nil
}

// scrubPair scrubs an answer's error and error_description together, so
// a token split between them is caught too.
func scrubPair(code, desc string, sent []string) (string, string) {
	out := scrubFields(sent, code, desc)
	return out[0], out[1]
}

// scrubbedError is an error whose message was scrubbed of server strings;
// errors.Is and errors.As still see the cause.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// redirectError describes a 3xx answer by the host it points to, never its
// path or query (where a server could echo a token).
func redirectError(resp *http.Response, sent []string) error {
	const why = "a redirect is never followed: it would send the refresh token on"
	loc, err := resp.Location()
	switch {
	case errors.Is(err, http.ErrNoLocation):
		return fmt.Errorf("redirect with no Location; %s", why)
	case err != nil || loc.Host == "":
		return fmt.Errorf("redirect to an unreadable Location; %s", why)
	}
	return fmt.Errorf("redirect to %s://%s; %s", scrub(loc.Scheme, sent...), scrub(loc.Host, sent...), why)
}

// clientAndScopes picks the client id and the scopes to request for old. A
// client id stored with the credential (under ClientIDMetadata) wins over
// the configured one, and such a credential asks for its own stored scopes
// (Scopes when it has none): the default scopes belong to the default
// client. Otherwise the request carries Scopes, then each stored scope that
// KeepScopes lists, without repeats.
func (c *Client) clientAndScopes(old sdk.Credential) (string, []string) {
	if key := c.cfg.ClientIDMetadata; key != "" {
		if id := old.Metadata[key]; id != "" {
			if len(old.Scopes) > 0 {
				return id, old.Scopes
			}
			return id, c.cfg.Scopes
		}
	}
	scopes := slices.Clone(c.cfg.Scopes)
	for _, s := range old.Scopes {
		if slices.Contains(c.cfg.KeepScopes, s) && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return c.cfg.ClientID, scopes
}

// decodeJSON decodes a token response, refusing what is not JSON (an HTML
// error page from a proxy is the usual case) with a message that says so.
// contentType must already be scrubbed; nothing of raw reaches the message.
func decodeJSON(contentType string, raw []byte, v any) error {
	trimmed := bytes.TrimSpace(raw)
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "text/html" || bytes.HasPrefix(trimmed, []byte("<")) {
		return fmt.Errorf("response is HTML (%s), not JSON: a proxy or error page?", orUnknown(contentType))
	}
	if len(trimmed) == 0 {
		return errors.New("response body is empty")
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("response is not valid JSON (at byte %d)", se.Offset)
		case errors.As(err, &te):
			return fmt.Errorf("response field %q has the wrong type (%s)", te.Field, te.Value)
		}
		return errors.New("response is not a JSON object")
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "no content type"
	}
	return s
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && secs > 0 {
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil && t.After(now) {
		d = t.Sub(now).Round(time.Second)
	}
	return min(d, maxRetryAfter)
}

// maxRetryAfter caps a server's Retry-After: a day is longer than any real
// rate limit, and a larger value would overflow a Duration or stop refreshes
// for good.
const maxRetryAfter = 24 * time.Hour
