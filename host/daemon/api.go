// Package daemon is `credhost serve`: one process that holds a Host for every
// agent of a user, serves its token from memory over a local socket,
// refreshes ahead of expiry, and turns a storm of 401s into one refresh; and
// the client that the credhost commands, Go launchers and the library use
// to talk to it.
//
// The wire protocol is HTTP/1.1 with JSON bodies over a unix socket (AF_UNIX,
// Windows 10 and later too), versioned under /v1. The types in this file are
// that protocol; the README shows each request with curl. A client that
// asks for it (InterimHeader) gets an interim 102 Processing before an
// answer that takes the daemon longer than a tenth of a second:
// FetchToken, which gives the daemon half a second to answer at all, takes
// it as the daemon's word that it works on the answer.
package daemon

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/credhost/credhost/host"
)

// The API's paths.
const (
	// PathToken answers GET with a Token: the JSON of `credhost token --json`.
	PathToken = "/v1/token"
	// PathRefresh answers POST (an optional RefreshRequest body) with the
	// Token after a forced refresh.
	PathRefresh = "/v1/refresh"
	// PathStatus answers GET with a Status: the JSON of `credhost status --json`.
	PathStatus = "/v1/status"
	// PathHealth answers GET with a Health.
	PathHealth = "/v1/health"
	// PathMetrics answers GET in the Prometheus text format.
	PathMetrics = "/metrics"
)

// ChainHeader carries the caller's chain identity (Host.ChainID) on a
// request. A daemon whose own chain differs (another config, or an
// environment that sets a variable the chain reads to another value)
// answers 409 with CodeChainMismatch, so the caller works directly instead
// of silently getting another chain's token. A request without the header
// (curl, a launcher that wants the daemon's token) is served.
const ChainHeader = "Credhost-Chain"

// InterimHeader on a request asks the daemon to say, with an interim 102
// Processing answer, that it works on an answer that takes it longer than
// a tenth of a second (a token that waits for a refresh, a forced
// refresh): FetchToken sends it ("102"), as it gives the daemon only half
// a second to answer at all. A request without it gets no interim answer:
// not every HTTP client skips one (Python's http.client takes it for the
// answer).
const InterimHeader = "Credhost-Interim"

// SocketEnv names the environment variable that sets the socket path, for
// `credhost serve` and its clients alike.
const SocketEnv = "CREDHOST_SOCKET"

// Token is a usable access token and how it was had: the JSON of
// `credhost token --json`, `GET /v1/token` and `POST /v1/refresh`.
type Token struct {
	AccessToken string     `json:"access_token"`
	ExpiresAt   *time.Time `json:"expires_at"`
	Provider    string     `json:"provider"`
	Refreshed   bool       `json:"refreshed"`
	Degraded    bool       `json:"degraded"`
	// DegradedReason says why a degraded token is degraded; it holds no
	// secret.
	DegradedReason string `json:"degraded_reason,omitempty"`
	// Fingerprint identifies the token without revealing it (what `credhost
	// status` shows); a caller that sees it rejected names it in a
	// RefreshRequest.
	Fingerprint string `json:"fingerprint"`
}

// NewToken is the Token of a host result.
func NewToken(res host.Result) Token {
	t := Token{
		AccessToken: res.Credential.AccessToken,
		Provider:    res.Provider,
		Refreshed:   res.Refreshed,
		Degraded:    res.Degraded,
		Fingerprint: res.Credential.Fingerprint(),
	}
	if !res.Credential.ExpiresAt.IsZero() {
		e := res.Credential.ExpiresAt.UTC()
		t.ExpiresAt = &e
	}
	if res.Degraded && res.DegradedReason != nil {
		t.DegradedReason = res.DegradedReason.Error()
	}
	return t
}

// RefreshRequest is the optional body of POST /v1/refresh. With Rejected
// set to the fingerprint of the token the caller saw refused (a 401), a
// daemon whose current token is already a different one returns that token
// without refreshing: twenty callers that saw the same token rejected cause
// one refresh.
type RefreshRequest struct {
	Rejected string `json:"rejected,omitempty"`
}

// Status is the JSON of `credhost status --json` and GET /v1/status.
type Status struct {
	Providers []host.ProviderStatus `json:"providers"`
}

// Health is the answer to GET /v1/health.
type Health struct {
	// Status is "ok" while the daemon serves.
	Status string `json:"status"`
	// PID is the daemon's process id.
	PID int `json:"pid"`
	// Chain is the daemon's chain identity (see ChainHeader).
	Chain string `json:"chain"`
	// Config is where the daemon's config came from (a path, or "embedded
	// default").
	Config string `json:"config"`
}

// Error is the body of every answer that is not 2xx.
type Error struct {
	// Error says what went wrong, with no secret in it.
	Error string `json:"error"`
	// Code is one of the Code constants, for callers that branch.
	Code string `json:"code"`
	// ExitCode is what the equivalent credhost command exits with (1 no
	// credential, 2 usage or config, 3 refresh impossible or failed).
	ExitCode int `json:"exit_code"`
}

// Error codes, each with the HTTP status it is sent with.
const (
	CodeNoCredential  = "no_credential"  // 404: no provider yields a credential; exit 1
	CodeRefreshFailed = "refresh_failed" // 502: a forced refresh failed or is impossible; exit 3
	CodeConfig        = "config"         // 500: the daemon's config is bad; exit 2
	CodeChainMismatch = "chain_mismatch" // 409: the caller's chain is not the daemon's; exit 2
	CodeForbidden     = "forbidden"      // 403: the peer is another user; exit 2
	CodeBadRequest    = "bad_request"    // 400 or 405: malformed request or method; exit 2
	CodeInternal      = "internal"       // 500: anything else; exit 2
)

// DefaultSocket is the socket `credhost serve` listens on and its clients
// dial when $CREDHOST_SOCKET is not set: $XDG_RUNTIME_DIR/credhost/credhost.sock
// when $XDG_RUNTIME_DIR is set, else credhost.sock in a per-user directory
// under the temporary directory (credhost-UID, the directory credhost's
// secret-store locks use), or under %LOCALAPPDATA%\credhost on Windows.
func DefaultSocket() string {
	if p := os.Getenv(SocketEnv); p != "" {
		return p
	}
	if runtime.GOOS == "windows" {
		if d := os.Getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "credhost", "credhost.sock")
		}
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rt) {
		return filepath.Join(rt, "credhost", "credhost.sock")
	}
	return filepath.Join(os.TempDir(), "credhost-"+strconv.Itoa(os.Geteuid()), "credhost.sock")
}
