//go:build unix

// Command sharedstore is a stand-in for a distributed store (etcd, Consul,
// Redis), for the tests of a lock a provider holds itself. It is a
// third-party plugin built with sdk/ only. The "store" is a directory that
// several test "machines" share (each with its own HOME, so no lock of
// credhost's own is shared between them):
//
//	DIR/credential.json  the credential (the credentials-file format under
//	                     claudeAiOauth) and a revision, bumped by each save
//	DIR/lease            the fleet's lock: an flock this plugin holds for
//	                     the host (sdk.Locker) until released; the kernel
//	                     lets it go when the plugin dies, as a lease
//	                     expires when its holder stops renewing it
//	DIR/holder.pid       the pid of the plugin holding the lease, for
//	                     tests that kill it
//
// Save is a compare-and-swap on the revision the last Read saw, as the
// etcd store's is on ModRevision: a holder that lost its lock can never
// overwrite a newer credential. Config: {dir: DIR}. A DIR that does not
// exist is a store that cannot be reached.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
	"github.com/credhost/credhost/sdk/oauth"
	"github.com/credhost/credhost/sdk/plugin"
)

const key = "claudeAiOauth"

func main() { plugin.Serve(&store{}) }

type store struct {
	mu      sync.Mutex
	dir     string
	oauth   sdk.OAuthConfig
	readRev int64 // the revision the last Read saw
}

var (
	_ sdk.Provider = (*store)(nil)
	_ sdk.Locker   = (*store)(nil)
)

func (s *store) Info(context.Context) (sdk.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sdk.Info{Name: "sharedstore", Version: "test", CanSave: true, CanRefresh: true,
		Locks: []sdk.Lock{{Kind: sdk.LockProvider, Path: "sharedstore lease " + s.dir, Scope: sdk.LockScopeRefresh}}}, nil
}

func (s *store) Configure(_ context.Context, req sdk.ConfigureRequest) error {
	var cfg struct {
		Dir string `json:"dir"`
	}
	if err := req.DecodeConfig(&cfg); err != nil {
		return err
	}
	if !filepath.IsAbs(cfg.Dir) {
		return sdk.InvalidConfig("dir: %q is not an absolute path", cfg.Dir)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir, s.oauth = cfg.Dir, req.OAuth
	return nil
}

// document is credential.json: the credential document and its revision.
type document struct {
	Revision int64           `json:"revision"`
	Doc      json.RawMessage `json:"doc"`
}

func (s *store) load() (document, sdk.Credential, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, "credential.json"))
	if errors.Is(err, os.ErrNotExist) {
		if _, derr := os.Stat(s.dir); derr != nil {
			return document{}, sdk.Credential{}, fmt.Errorf("the shared store at %s is unreachable: %w", s.dir, derr)
		}
		return document{}, sdk.Credential{}, sdk.NotFound("the shared store holds no credential")
	}
	if err != nil {
		return document{}, sdk.Credential{}, err
	}
	var d document
	if err := json.Unmarshal(data, &d); err != nil {
		return document{}, sdk.Credential{}, fmt.Errorf("credential.json: %w", err)
	}
	_, cred, err := credjson.Parse(d.Doc, key)
	return d, cred, err
}

func (s *store) Read(context.Context) (sdk.Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, cred, err := s.load()
	if err != nil {
		return sdk.Credential{}, err
	}
	s.readRev = d.Revision
	return cred, nil
}

// Save writes cred if the store is still at the revision the last Read
// saw (a short flock on DIR/.mutex makes compare and write one step).
func (s *store) Save(_ context.Context, cred sdk.Credential) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu, err := os.OpenFile(filepath.Join(s.dir, ".mutex"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("the shared store at %s is unreachable: %w", s.dir, err)
	}
	defer mu.Close()
	if err := syscall.Flock(int(mu.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	d, _, err := s.load()
	if err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return err
	}
	if d.Revision != s.readRev {
		return fmt.Errorf("the credential changed since it was read (revision %d, read at %d); not overwriting it", d.Revision, s.readRev)
	}
	doc, err := credjson.Merge(d.Doc, key, cred)
	if err != nil {
		return err
	}
	out, err := json.Marshal(document{Revision: d.Revision + 1, Doc: doc})
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, ".credential.json."+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "credential.json")); err != nil {
		return err
	}
	s.readRev = d.Revision + 1
	return nil
}

func (s *store) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	s.mu.Lock()
	cfg := s.oauth
	s.mu.Unlock()
	c, err := oauth.New(cfg)
	if err != nil {
		return sdk.Credential{}, err
	}
	return c.Refresh(ctx, cred)
}

// Lock takes DIR/lease, waiting until ctx ends, and holds it until
// Release or ctx's end.
func (s *store) Lock(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error) {
	s.mu.Lock()
	dir := s.dir
	s.mu.Unlock()
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("the shared store at %s is unreachable: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lease"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("the shared store at %s is unreachable: %w", dir, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("take the %s: %w", req.Lock, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another holder has the %s: %w", req.Lock, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "holder.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600)
	h := &hold{f: f, pidFile: filepath.Join(dir, "holder.pid"), lost: make(chan struct{}), done: make(chan struct{})}
	go func() {
		select {
		case <-ctx.Done():
			_ = h.Release(context.Background())
		case <-h.done:
		}
	}()
	return h, nil
}

// hold is a held lease. This stand-in never loses it while its process
// lives; killing the process is how tests make it go.
type hold struct {
	f       *os.File
	pidFile string
	lost    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func (h *hold) Lost() <-chan struct{} { return h.lost }
func (h *hold) Err() error            { return nil }

func (h *hold) Release(context.Context) error {
	h.once.Do(func() {
		_ = os.Remove(h.pidFile)
		_ = syscall.Flock(int(h.f.Fd()), syscall.LOCK_UN)
		h.f.Close()
		close(h.done)
	})
	return nil
}
