package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/host"
)

// Server answers the API for one Host. It is safe for concurrent use; the
// Host can be replaced while it serves (Reload).
type Server struct {
	logger  hclog.Logger
	metrics *metrics
	uid     int

	mu  sync.Mutex
	cur *hostRef
}

// hostRef is a host and the requests using it, so a replaced host is
// closed only after they finish.
type hostRef struct {
	h      *host.Host
	source string
	users  sync.WaitGroup
}

// Options configures NewServer.
type Options struct {
	// Host is the host whose tokens are served; the server closes it
	// (Close, or Reload when it is replaced).
	Host *host.Host
	// Logger receives the server's log; nil discards it. No line holds a
	// token.
	Logger hclog.Logger
}

// NewServer builds a server for opts.Host.
func NewServer(opts Options) *Server {
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Server{
		logger:  logger,
		metrics: newMetrics(),
		uid:     os.Geteuid(),
		cur:     &hostRef{h: opts.Host, source: opts.Host.Config().Source},
	}
}

// acquire returns the current host, counted as in use until release.
func (s *Server) acquire() *hostRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.cur
	r.users.Add(1)
	return r
}

// Reload replaces the served host with h (a reloaded config). The old host
// is closed once the requests using it have finished.
func (s *Server) Reload(h *host.Host) {
	s.mu.Lock()
	old := s.cur
	s.cur = &hostRef{h: h, source: h.Config().Source}
	s.mu.Unlock()
	go func() {
		old.users.Wait()
		old.h.Close()
	}()
}

// Close ends the current host's plugin processes once the requests using
// it have finished.
func (s *Server) Close() error {
	s.mu.Lock()
	r := s.cur
	s.mu.Unlock()
	r.users.Wait()
	return r.h.Close()
}

// Serve answers requests on ln until ctx ends, then stops accepting,
// lets the requests in flight finish (up to grace), and returns. It does
// not close the host (Close does).
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       s.connContext,
		ErrorLog:          s.logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

// peerKey keys the peer of a connection in its requests' contexts.
type peerKey struct{}

type peer struct {
	uid int
	err error
}

func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	if !checkPeers {
		return ctx
	}
	uid, err := peerUID(c)
	return context.WithValue(ctx, peerKey{}, peer{uid, err})
}

// Handler is the API: every path, behind the peer check.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathToken, s.only(http.MethodGet, s.token))
	mux.HandleFunc(PathRefresh, s.only(http.MethodPost, s.refresh))
	mux.HandleFunc(PathStatus, s.only(http.MethodGet, s.status))
	mux.HandleFunc(PathHealth, s.only(http.MethodGet, s.health))
	mux.HandleFunc(PathMetrics, s.only(http.MethodGet, s.metricsPage))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeBadRequest, 2, "no such path; the API is "+PathToken+", "+PathRefresh+", "+PathStatus+", "+PathHealth+", "+PathMetrics)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() { s.metrics.served(r.URL.Path, rec.status) }()
		if !s.allowed(rec, r) {
			return
		}
		mux.ServeHTTP(rec, r)
	})
}

// allowed applies the peer check: a connection from another user is
// refused (403) and logged with its uid, and learns nothing else.
func (s *Server) allowed(w http.ResponseWriter, r *http.Request) bool {
	if !checkPeers {
		return true
	}
	p, ok := r.Context().Value(peerKey{}).(peer)
	switch {
	case !ok:
		s.logger.Warn("refused a request whose peer is unknown")
	case p.err != nil:
		s.logger.Warn("refused a request whose peer could not be checked", "error", p.err.Error())
	case p.uid != s.uid:
		s.logger.Warn("refused a request from another user", "uid", p.uid)
	default:
		return true
	}
	writeError(w, http.StatusForbidden, CodeForbidden, 2, "this daemon serves only its own user")
	return false
}

func (s *Server) only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, CodeBadRequest, 2, r.URL.Path+" takes "+method)
			return
		}
		h(w, r)
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	ref := s.acquire()
	defer ref.users.Done()
	res, err := ref.h.Token(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.observe(res)
	writeJSON(w, http.StatusOK, NewToken(res))
}

// maxBody bounds a request body: a RefreshRequest is a few dozen bytes.
const maxBody = 4 << 10

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	var req RefreshRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = errors.New("larger than 4 KiB")
	}
	if err == nil && len(body) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, 2, "the body must be a JSON RefreshRequest ({\"rejected\": \"<fingerprint>\"}) or empty: "+err.Error())
		return
	}
	ref := s.acquire()
	defer ref.users.Done()
	res, err := ref.h.RefreshRejected(r.Context(), req.Rejected)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.observe(res)
	writeJSON(w, http.StatusOK, NewToken(res))
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ref := s.acquire()
	defer ref.users.Done()
	writeJSON(w, http.StatusOK, Status{Providers: ref.h.Status(r.Context())})
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	ref := s.acquire()
	defer ref.users.Done()
	// TODO(chain): Chain is host.ChainID() once the client branch lands it.
	writeJSON(w, http.StatusOK, Health{Status: "ok", PID: os.Getpid(), Config: ref.source})
}

func (s *Server) metricsPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if err := s.metrics.write(w); err != nil {
		s.logger.Warn("writing the metrics failed", "error", err.Error())
	}
}

// observe records a served result in the metrics.
func (s *Server) observe(res host.Result) {
	if res.Refreshed {
		s.metrics.refreshed(res.Provider, "ok")
	}
	s.metrics.expiry(res.Provider, res.Credential.ExpiresAt)
	s.metrics.degraded(res.Degraded)
}

// fail answers a host error with its JSON and HTTP status.
func (s *Server) fail(w http.ResponseWriter, err error) {
	status, code, exit := http.StatusInternalServerError, CodeInternal, 2
	switch {
	case errors.Is(err, host.ErrConfig):
		code = CodeConfig
	case errors.Is(err, host.ErrNoCredential):
		status, code, exit = http.StatusNotFound, CodeNoCredential, 1
	case errors.Is(err, host.ErrRefreshFailed):
		status, code, exit = http.StatusBadGateway, CodeRefreshFailed, 3
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller went away, or the daemon is stopping.
		status = http.StatusServiceUnavailable
	}
	s.logger.Debug("request failed", "code", code, "error", err.Error())
	writeError(w, status, code, exit, err.Error())
}

func writeError(w http.ResponseWriter, status int, code string, exit int, msg string) {
	writeJSON(w, status, Error{Error: msg, Code: code, ExitCode: exit})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// recorder remembers the status a handler sent.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
