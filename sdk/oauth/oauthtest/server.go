// Package oauthtest is a real OAuth token endpoint for tests (httptest): it
// answers the refresh_token grant the way production servers do under
// RFC 9700's refresh-token rotation. Each refresh token works once; the
// answer carries a new one; presenting a used token again is treated as
// theft: the server answers invalid_grant and revokes the whole family, so
// even the newest token stops working. Tests that share a token across
// goroutines or processes see exactly the failure users would.
//
// Faults are switched on per server with SetMode. A Server is safe for
// concurrent use.
package oauthtest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Mode selects how the server answers.
type Mode int

// Modes.
const (
	// Normal rotates tokens and punishes reuse.
	Normal Mode = iota
	// ServerError answers 500 with a JSON body.
	ServerError
	// HTML answers 200 with an HTML page (a captive portal, a proxy).
	HTML
	// MissingAccessToken answers 200 with JSON lacking access_token.
	MissingAccessToken
	// NoRefreshToken answers like Normal but without a new refresh token
	// (RFC 6749 §6 allows it) and without rotating.
	NoRefreshToken
	// NoExpiresIn answers like Normal but without expires_in.
	NoExpiresIn
	// TooManyRequests answers 429 with Retry-After: 120.
	TooManyRequests
	// NotJSON answers 200 with a body that is not JSON.
	NotJSON
	// RotateOnArrival answers like Normal, but rotates the refresh token
	// as soon as the request arrives and only then waits out Delay before
	// answering: a client that dies or gives up meanwhile never sees the
	// new refresh token, which the server has already made the only one
	// that works. Nobody holds it; the old one, presented again, is a
	// reuse.
	RotateOnArrival
)

// Server is a rotating token endpoint.
type Server struct {
	*httptest.Server
	// ClientID is the client id the server accepts (empty: any).
	ClientID string
	// ExpiresIn is the lifetime it grants; default one hour.
	ExpiresIn time.Duration
	// Delay is how long it waits before answering each request; set it
	// with SetDelay once requests may be in flight.
	Delay time.Duration

	done chan struct{}

	mu       sync.Mutex
	mode     Mode
	seq      int
	families map[string]*family // refresh token -> family
	requests int                // handled (after Delay; on arrival for RotateOnArrival)
	arrived  int                // arrived (before Delay)
	reuses   int
	bodies   []string // content types seen
	grants   []Grant  // client ids and scopes seen
}

// Grant is what one request asked for, besides its refresh token.
type Grant struct {
	// ClientID is the request's client_id ("" when absent).
	ClientID string
	// Scope is the request's scope parameter ("" when absent).
	Scope string
}

// Grants lists the client id and scope of each request, in order.
func (s *Server) Grants() []Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Grant(nil), s.grants...)
}

type family struct {
	id      int
	current string // the one refresh token that still works
	revoked bool
}

// NewServer starts a server; it is closed when the test ends.
func NewServer(t interface {
	Helper()
	Cleanup(func())
}) *Server {
	t.Helper()
	s := &Server{families: map[string]*family{}, ExpiresIn: time.Hour, done: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.done) // end delayed answers, so Close does not wait them out
		s.Close()
	})
	return s
}

// TokenURL is the endpoint's URL.
func (s *Server) TokenURL() string { return s.URL + "/v1/oauth/token" }

// SetMode switches how the server answers from now on.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// Issue starts a new token family and returns its first access and refresh
// tokens, as a login would.
func (s *Server) Issue() (access, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	f := &family{id: s.seq}
	access, refresh = s.mint(f)
	return access, refresh
}

// mint issues the next token pair of f. Callers hold s.mu.
func (s *Server) mint(f *family) (access, refresh string) {
	s.seq++
	access = fmt.Sprintf("test-access-f%d-%d", f.id, s.seq)
	refresh = fmt.Sprintf("test-refresh-f%d-%d", f.id, s.seq)
	f.current = refresh
	s.families[refresh] = f
	return access, refresh
}

// Requests is how many token requests arrived.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Arrived is how many token requests reached the server, including ones
// still waiting out Delay or abandoned by their client.
func (s *Server) Arrived() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arrived
}

// SetDelay sets how long the server waits before answering each request.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Delay = d
}

// Reuses is how many times a used refresh token came back.
func (s *Server) Reuses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reuses
}

// Revoked reports whether the family of refresh token was revoked.
func (s *Server) Revoked(refresh string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.families[refresh]
	return ok && f.revoked
}

// ContentTypes lists the request content types seen, in order.
func (s *Server) ContentTypes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.arrived++
	delay, mode := s.Delay, s.mode
	s.mu.Unlock()
	if mode == RotateOnArrival {
		// Answer now, into a buffer; deliver it late.
		rec := &recorded{header: http.Header{}}
		s.answer(rec, r)
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			case <-s.done:
				return
			}
		}
		rec.replay(w)
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
	s.answer(w, r)
}

// answer handles one request: rotation, reuse, faults.
func (s *Server) answer(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	grant, token, clientID, scope, err := parseGrant(r)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.bodies = append(s.bodies, r.Header.Get("Content-Type"))
	s.grants = append(s.grants, Grant{ClientID: clientID, Scope: scope})
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	switch s.mode {
	case ServerError:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	case HTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "<html><body><h1>Sign in to the Wi-Fi</h1></body></html>")
		return
	case NotJSON:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "access_token=oops")
		return
	case MissingAccessToken:
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3600})
		return
	case TooManyRequests:
		w.Header().Set("Retry-After", "120")
		writeError(w, http.StatusTooManyRequests, "rate_limited", "slow down")
		return
	}
	if grant != "refresh_token" {
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "only refresh_token")
		return
	}
	if s.ClientID != "" && clientID != s.ClientID {
		writeError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	f, ok := s.families[token]
	switch {
	case !ok:
		writeError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
		return
	case f.revoked:
		writeError(w, http.StatusBadRequest, "invalid_grant", "refresh token revoked")
		return
	case f.current != token:
		// Reuse of a rotated token: RFC 9700 §4.14.2, revoke the family.
		s.reuses++
		f.revoked = true
		writeError(w, http.StatusBadRequest, "invalid_grant", "refresh token reused; family revoked")
		return
	}
	resp := map[string]any{"token_type": "Bearer", "scope": "user:inference user:profile"}
	if s.mode == NoRefreshToken {
		s.seq++
		resp["access_token"] = fmt.Sprintf("test-access-f%d-%d", f.id, s.seq)
	} else {
		access, refresh := s.mint(f)
		resp["access_token"], resp["refresh_token"] = access, refresh
	}
	if s.mode != NoExpiresIn {
		resp["expires_in"] = int(s.ExpiresIn / time.Second)
	}
	writeJSON(w, http.StatusOK, resp)
}

// recorded is an answer kept to be delivered late (RotateOnArrival).
type recorded struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorded) Header() http.Header { return r.header }
func (r *recorded) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorded) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.body = append(r.body, b...)
	return len(b), nil
}

func (r *recorded) replay(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

// parseGrant reads a form or JSON body.
func parseGrant(r *http.Request) (grant, token, clientID, scope string, err error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		var body struct {
			GrantType    string `json:"grant_type"`
			RefreshToken string `json:"refresh_token"`
			ClientID     string `json:"client_id"`
			Scope        string `json:"scope"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return "", "", "", "", fmt.Errorf("bad JSON body: %v", err)
		}
		return body.GrantType, body.RefreshToken, body.ClientID, body.Scope, nil
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return "", "", "", "", err
		}
		return r.PostForm.Get("grant_type"), r.PostForm.Get("refresh_token"), r.PostForm.Get("client_id"), r.PostForm.Get("scope"), nil
	}
	return "", "", "", "", fmt.Errorf("unsupported content type %q", strings.TrimSpace(mt))
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
