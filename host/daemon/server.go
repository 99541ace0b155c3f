package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/host"
)

// Server answers the API for one Host, refreshes its token ahead of
// expiry and re-reads its chain every Staleness (see Serve). It is safe for
// concurrent use; the Host can be replaced while it serves (Reload).
type Server struct {
	logger    hclog.Logger
	metrics   *metrics
	uid       int
	staleness time.Duration

	mu      sync.Mutex
	cur     *hostRef
	serving context.Context // Serve's, while it runs
	keepers sync.WaitGroup  // the refresh-ahead loops
	retired sync.WaitGroup  // replaced hosts not yet closed
}

// hostRef is a host, the requests using it (so a replaced host is closed
// only after they finish) and its refresh-ahead loop.
type hostRef struct {
	h      *host.Host
	source string
	chain  string // h.ChainID(), computed once: the daemon's environment is fixed
	users  sync.WaitGroup
	stop   context.CancelFunc // ends the refresh-ahead loop

	mu        sync.Mutex
	holdUntil time.Time // no refresh per request before then (backoff)
	holdWhy   error     // the failure being waited out
}

// DefaultStaleness is how long a store changed behind the daemon (a new
// login, another process's refresh) may go unnoticed: the chain is
// re-read this often, and requests are served from memory in between.
const DefaultStaleness = 2 * time.Second

// Options configures NewServer.
type Options struct {
	// Host is the host whose tokens are served; the server closes it
	// (Close, or Reload when it is replaced).
	Host *host.Host
	// Logger receives the server's log; nil discards it. No line holds a
	// token.
	Logger hclog.Logger
	// Staleness bounds how long a change of a store behind the daemon
	// goes unnoticed (DefaultStaleness when 0).
	Staleness time.Duration
}

// NewServer builds a server for opts.Host.
func NewServer(opts Options) *Server {
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if opts.Staleness <= 0 {
		opts.Staleness = DefaultStaleness
	}
	return &Server{
		logger:    logger,
		metrics:   newMetrics(),
		uid:       os.Geteuid(),
		staleness: opts.Staleness,
		cur:       newHostRef(opts.Host),
	}
}

func newHostRef(h *host.Host) *hostRef {
	return &hostRef{h: h, source: h.Config().Source, chain: h.ChainID()}
}

// use acquires the current host for a request, unless the request names
// another chain (ChainHeader): then it answers 409, so the caller works
// directly rather than get another chain's token. The caller calls
// ref.users.Done when ok.
func (s *Server) use(w http.ResponseWriter, r *http.Request) (ref *hostRef, ok bool) {
	ref = s.acquire()
	if c := r.Header.Get(ChainHeader); c != "" && c != ref.chain {
		ref.users.Done()
		writeError(w, http.StatusConflict, CodeChainMismatch, 2, "the caller's chain (config or the environment variables it reads) is not the daemon's; work directly")
		return nil, false
	}
	return ref, true
}

// acquire returns the current host, counted as in use until release.
func (s *Server) acquire() *hostRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.cur
	r.users.Add(1)
	return r
}

// Reload replaces the served host with h (a reloaded config). The old
// host's refresh-ahead loop ends (a refresh under way is finished and
// saved), and the host is closed once the requests using it have finished.
func (s *Server) Reload(h *host.Host) {
	s.mu.Lock()
	old := s.cur
	s.cur = newHostRef(h)
	if s.serving != nil {
		s.startKeeper(s.serving, s.cur)
	}
	s.retired.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.retired.Done()
		if old.stop != nil {
			old.stop()
		}
		old.users.Wait()
		old.h.Close()
	}()
}

// Close ends the hosts' plugin processes once the requests and refreshes
// using them have finished.
func (s *Server) Close() error {
	s.mu.Lock()
	r := s.cur
	s.mu.Unlock()
	if r.stop != nil {
		r.stop()
	}
	r.users.Wait()
	s.retired.Wait()
	return r.h.Close()
}

// Serve answers requests on ln until ctx ends. Meanwhile it keeps the
// token fresh ahead of expiry (Ahead) and re-reads the chain every
// Staleness, so requests are answered from memory and a store changed
// behind the daemon is served within that bound. When ctx ends it stops
// accepting, lets the requests in flight finish (up to grace), waits for a
// refresh under way to be saved, and returns. It closes ln, not the host
// (Close does).
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeader,
		ConnContext:       s.connContext,
		ErrorLog:          s.logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	s.mu.Lock()
	s.serving = ctx
	s.startKeeper(ctx, s.cur)
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		err = srv.Shutdown(sctx)
		if err != nil {
			// The grace is over: end the connections still open.
			srv.Close()
		}
		<-errc
	}
	s.mu.Lock()
	s.serving = nil
	if s.cur.stop != nil {
		s.cur.stop()
	}
	s.mu.Unlock()
	s.keepers.Wait()
	return err
}

// startKeeper starts ref's refresh-ahead loop. Callers hold s.mu.
func (s *Server) startKeeper(ctx context.Context, ref *hostRef) {
	ctx, ref.stop = context.WithCancel(ctx)
	ref.users.Add(1)
	s.keepers.Add(1)
	go func() {
		defer s.keepers.Done()
		defer ref.users.Done()
		s.keep(ctx, ref)
	}()
}

// keep refreshes ref's token ahead of expiry and re-reads its chain every
// staleness, until ctx ends.
func (s *Server) keep(ctx context.Context, ref *hostRef) {
	h := ref.h
	// A refresh the first look starts is waited for even when the loop
	// is stopped meanwhile (a reload, a shutdown): given up on, it would
	// be logged as a failed refresh while it goes on and succeeds.
	first, err := h.Token(context.WithoutCancel(ctx))
	if err == nil {
		s.observe(first)
	} else {
		s.logger.Warn("no token to serve yet; the chain is re-read every "+s.staleness.String(), "error", err.Error())
	}
	a := &Ahead{
		Buffer: h.Config().Refresh.Buffer.Std(),
		Jitter: true,
		Refresh: func(ctx context.Context, cur host.Result) (host.Result, error) {
			// A refresh must finish and be saved once it has started.
			ctx = context.WithoutCancel(ctx)
			if cur.Credential.AccessToken == "" {
				return h.Token(ctx)
			}
			// Ahead of the buffer: forced, unless the store already
			// holds another token (another process refreshed).
			return h.RefreshAfterUnauthorized(ctx, cur.Credential.AccessToken)
		},
		Check: h.Reread,
		Every: s.staleness,
		Observe: func(res host.Result, err error, retryAt time.Time) {
			ref.mu.Lock()
			ref.holdUntil, ref.holdWhy = retryAt, err
			ref.mu.Unlock()
			switch {
			case err != nil:
				s.metrics.refreshed(res.Provider, "failed")
				s.metrics.degraded(true)
			case res.Refreshed:
				s.observe(res)
			default: // the store held a fresh token already
				s.metrics.refreshed(res.Provider, "adopted")
				s.observe(res)
			}
		},
		Logger: s.logger,
		What:   "the daemon's token",
	}
	a.Run(ctx, first)
}

// current is the token to serve: the host's, refreshed when it needs it;
// while a failed refresh is being waited out (backoff, Retry-After), the
// token as it is, marked degraded, rather than another try per request.
func (s *Server) current(ctx context.Context, ref *hostRef) (host.Result, error) {
	ref.mu.Lock()
	until, why := ref.holdUntil, ref.holdWhy
	ref.mu.Unlock()
	if time.Now().Before(until) {
		res, err := ref.h.Peek(ctx)
		if err != nil || !ref.h.NeedsRefresh(res) {
			return res, err
		}
		res.Degraded, res.DegradedReason = true, why
		return res, nil
	}
	res, err := ref.h.Token(ctx)
	if err == nil && res.Degraded {
		s.metrics.refreshed(res.Provider, "failed")
		// Another request tries again in a second at the soonest.
		ref.mu.Lock()
		if t := time.Now().Add(FirstRetry); t.After(ref.holdUntil) {
			ref.holdUntil, ref.holdWhy = t, res.DegradedReason
		}
		ref.mu.Unlock()
	}
	return res, err
}

// held is why refreshes are being waited out (a failed refresh's backoff,
// the endpoint's Retry-After), or nil.
func (ref *hostRef) held() error {
	ref.mu.Lock()
	defer ref.mu.Unlock()
	if time.Now().Before(ref.holdUntil) && ref.holdWhy != nil {
		return ref.holdWhy
	}
	return nil
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

// PeerIsSelf reports whether the process at the other end of c (for a
// client, the daemon, or the service manager that made its socket) runs
// as this user: the peer check, from the client's side. Where the system
// reports no peer (Windows) it is nil.
func PeerIsSelf(c net.Conn) error {
	if !checkPeers {
		return nil
	}
	uid, err := peerUID(c)
	if err != nil {
		return fmt.Errorf("the daemon's uid: %w", err)
	}
	if uid != os.Geteuid() {
		return fmt.Errorf("the daemon runs as uid %d, not as this user (uid %d); not asking it", uid, os.Geteuid())
	}
	return nil
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
		defer func() { s.metrics.served(route(r.URL.Path), rec.status) }()
		if !s.allowed(rec, r) {
			return
		}
		mux.ServeHTTP(rec, r)
	})
}

// route is path when it is one of the API's, else "other": a metric label
// takes a bounded set of values, whatever clients ask for.
func route(path string) string {
	switch path {
	case PathToken, PathRefresh, PathStatus, PathHealth, PathMetrics:
		return path
	}
	return "other"
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
	ref, ok := s.use(w, r)
	if !ok {
		return
	}
	defer ref.users.Done()
	var res host.Result
	var err error
	working(w, r, func() { res, err = s.current(r.Context(), ref) })
	if err != nil {
		s.fail(w, err)
		return
	}
	s.observe(res)
	writeJSON(w, http.StatusOK, NewToken(res))
}

// interimAfter is how long a request may take before the daemon tells
// the client it is working on it (an interim 102 Processing answer), when
// the client asks (InterimHeader): a client that asks in one request
// (FetchToken) gives the daemon only its dial bound, half a second, to
// answer at all, and a token that waits for a refresh, or a forced
// refresh, takes longer.
const interimAfter = 100 * time.Millisecond

// working runs fn, which must not touch w, and, when r asks for interim
// answers (InterimHeader), sends a 102 Processing on w if fn takes longer
// than interimAfter. The final answer follows as usual.
func working(w http.ResponseWriter, r *http.Request, fn func()) {
	if !r.ProtoAtLeast(1, 1) || r.Header.Get(InterimHeader) == "" {
		// HTTP/1.0 has no interim answers, and a client that did not
		// ask may take one for the answer.
		fn()
		return
	}
	var mu sync.Mutex
	done := false
	t := time.AfterFunc(interimAfter, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			w.WriteHeader(http.StatusProcessing)
		}
	})
	fn()
	t.Stop()
	mu.Lock()
	done = true
	mu.Unlock()
}

// Bounds on a request and its answer: a RefreshRequest is a few dozen
// bytes, a request's headers a few hundred (net/http allows a megabyte per
// connection), and a client that sends its body or reads its answer
// slower than ioTimeout (one stuck, or one holding the daemon's
// connections) is cut off, so neither a handler nor the daemon's shutdown
// waits on it. The timeouts are per request, not the server's ReadTimeout
// or WriteTimeout, which would also cut a refresh that takes its time.
const (
	maxBody   = 4 << 10
	maxHeader = 16 << 10
	ioTimeout = 10 * time.Second
)

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	var req RefreshRequest
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(ioTimeout))
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = errors.New("larger than 4 KiB")
	}
	if err == nil {
		// No deadline while the refresh runs: the server's background
		// read would end the request's context when it passed.
		_ = rc.SetReadDeadline(time.Time{})
	} else {
		// The rest of the body is not read after the answer, as it
		// would be on a connection kept open.
		w.Header().Set("Connection", "close")
	}
	if err == nil && len(body) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, 2, "the body must be a JSON RefreshRequest ({\"rejected\": \"<fingerprint>\"}) or empty: "+err.Error())
		return
	}
	ref, ok := s.use(w, r)
	if !ok {
		return
	}
	defer ref.users.Done()
	if req.Rejected != "" {
		// A rejected token that is not the one served is answered with
		// the one served, found as GET /v1/token finds it: while a failed
		// refresh is waited out, a stale or made-up fingerprint must not
		// send the endpoint a refresh per request, nor may the token
		// served being refused.
		var cur host.Result
		working(w, r, func() { cur, err = s.current(r.Context(), ref) })
		if err != nil {
			s.fail(w, err)
			return
		}
		if cur.Credential.Fingerprint() != req.Rejected {
			s.observe(cur)
			writeJSON(w, http.StatusOK, NewToken(cur))
			return
		}
		if why := ref.held(); why != nil {
			s.fail(w, fmt.Errorf("%w: the last refresh failed and is retried with backoff: %w", host.ErrRefreshFailed, why))
			return
		}
	}
	var res host.Result
	working(w, r, func() { res, err = ref.h.RefreshRejected(r.Context(), req.Rejected) })
	if err != nil {
		if errors.Is(err, host.ErrRefreshFailed) {
			// The client hears it too, but the operator reads the
			// daemon's log: a refresh that fails here is the one a
			// client needed after a 401.
			s.logger.Warn("a refresh a client asked for failed", "error", err.Error())
		}
		s.fail(w, err)
		return
	}
	s.observe(res)
	writeJSON(w, http.StatusOK, NewToken(res))
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.use(w, r)
	if !ok {
		return
	}
	defer ref.users.Done()
	var rows []host.ProviderStatus
	working(w, r, func() { rows = ref.h.Status(r.Context()) })
	writeJSON(w, http.StatusOK, Status{Providers: rows})
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	ref := s.acquire()
	defer ref.users.Done()
	writeJSON(w, http.StatusOK, Health{Status: "ok", PID: os.Getpid(), Chain: ref.chain, Config: ref.source})
}

func (s *Server) metricsPage(w http.ResponseWriter, _ *http.Request) {
	writeDeadline(w)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if err := s.metrics.write(w); err != nil {
		s.logger.Warn("writing the metrics failed", "error", err.Error())
	}
}

// observe records a served result in the metrics: a refresh it comes
// from, when and whose token expires, whether it is degraded.
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
	writeDeadline(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeDeadline bounds the writing of an answer, flushed when the handler
// returns, by ioTimeout: a client that never reads its answers ends its
// connection rather than holding it (and the daemon's shutdown) forever.
func writeDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(ioTimeout))
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

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
