package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
	"github.com/credhost/credhost/sdk/oauth"
)

// provider is the etcd store: one credentials document under one key,
// shared by every machine of a fleet.
type provider struct {
	lookupEnv func(string) (string, bool)

	connMu sync.Mutex // one connect at a time

	mu       sync.Mutex // guards the fields below
	s        *settings
	oauth    *oauth.Client
	cli      *clientv3.Client
	held     *hold            // the fleet lock, while this process holds it
	seen     map[string]int64 // refresh token -> ModRevision of the read that returned it
	refreshd map[string]int64 // access token Refresh returned -> ModRevision its refresh token was read at
}

var (
	_ sdk.Provider = (*provider)(nil)
	_ sdk.Checker  = (*provider)(nil)
	_ sdk.Locker   = (*provider)(nil)
)

func newProvider() *provider {
	return &provider{lookupEnv: os.LookupEnv, seen: map[string]int64{}, refreshd: map[string]int64{}}
}

// Info declares the fleet lock: a lock this provider holds itself (an etcd
// mutex on a lease), taken by the host around re-read, refresh and save.
func (p *provider) Info(context.Context) (sdk.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info := sdk.Info{Name: "etcd", Version: "1", CanSave: true, CanRefresh: p.oauth != nil}
	if p.s != nil {
		info.Locks = []sdk.Lock{{Kind: sdk.LockProvider, Path: p.s.lockKey, Scope: sdk.LockScopeRefresh}}
	}
	return info, nil
}

// Configure checks the config block; it does not connect (a cold call
// that the chain answers before reaching this provider never pays for it).
func (p *provider) Configure(_ context.Context, req sdk.ConfigureRequest) error {
	s, err := parseConfig(req, p.lookupEnv)
	if err != nil {
		return err
	}
	var client *oauth.Client
	if req.OAuth.TokenURL != "" {
		if client, err = oauth.New(req.OAuth); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cli != nil {
		p.cli.Close()
		p.cli = nil
	}
	p.s, p.oauth = s, client
	return nil
}

// client returns the connected client, connecting on first use: within
// the dial timeout, and no longer than ctx allows.
func (p *provider) client(ctx context.Context) (*clientv3.Client, *settings, error) {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	p.mu.Lock()
	cli, s := p.cli, p.s
	p.mu.Unlock()
	if s == nil {
		return nil, nil, errors.New("etcd provider used before Configure")
	}
	if cli != nil {
		return cli, s, nil
	}
	type dialed struct {
		cli *clientv3.Client
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		// With a username, New authenticates before it returns, bounded
		// by DialTimeout; without one it returns at once and the first
		// request waits for a connection within its own deadline.
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   s.endpoints,
			DialTimeout: s.dialTimeout,
			TLS:         s.tls,
			Username:    s.username,
			Password:    s.password,
			// stderr is the host's log channel, in hclog's JSON: the
			// client's own log (every retry against a member that is
			// down) stays out of it.
			Logger: zap.NewNop(),
			// Keepalive on each connection, so a member that vanished
			// is noticed, and left for another, within seconds.
			DialKeepAliveTime:    5 * time.Second,
			DialKeepAliveTimeout: 2 * time.Second,
		})
		ch <- dialed{cli, err}
	}()
	select {
	case d := <-ch:
		if d.err != nil {
			return nil, nil, etcdError("connect to", s, d.err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.s != s { // reconfigured meanwhile
			d.cli.Close()
			return nil, nil, errors.New("etcd provider reconfigured during connect; try again")
		}
		p.cli = d.cli
		return d.cli, s, nil
	case <-ctx.Done():
		go func() {
			if d := <-ch; d.cli != nil {
				d.cli.Close()
			}
		}()
		return nil, nil, etcdError("connect to", s, ctx.Err())
	}
}

// Kinds of etcd failure, each with its own advice (see fixFor).
const (
	failOther = iota
	failUnreachable
	failAuth
	failPermission
)

// etcdErr is a failure talking to the cluster: its text says what failed
// and why, in words a user can act on; kind picks the advice.
type etcdErr struct {
	kind int
	msg  string
	err  error
}

func (e *etcdErr) Error() string { return e.msg }

// Unwrap gives a context's error (a timeout) but not the etcd client's
// gRPC status: across the plugin boundary a wrapped status would travel
// as this plugin's own (Unavailable reads as "plugin crashed").
func (e *etcdErr) Unwrap() error {
	if errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, context.Canceled) {
		return e.err
	}
	return nil
}

// etcdError says what failed talking to the cluster: unreachable, refused
// the user, lacks permission.
func etcdError(op string, s *settings, err error) error {
	where := fmt.Sprintf("etcd %v", s.endpoints)
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrUserEmpty):
		return &etcdErr{failAuth, fmt.Sprintf("%s %s: authentication as %q failed: %v", op, where, s.username, err), err}
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return &etcdErr{failPermission, fmt.Sprintf("%s %s: user %q lacks permission: %v", op, where, s.username, err), err}
	case errors.Is(err, context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded, status.Code(err) == codes.Unavailable:
		return &etcdErr{failUnreachable, fmt.Sprintf("%s %s: unreachable within the timeout: %v", op, where, err), err}
	}
	return &etcdErr{failOther, fmt.Sprintf("%s %s: %v", op, where, err), err}
}

// remember records that refresh token rt was read at revision rev, so a
// Save of what Refresh made of it can compare-and-swap on that revision.
// Callers hold p.mu. The maps are bounded: a few entries are live at once.
func (p *provider) remember(m map[string]int64, token string, rev int64) {
	if len(m) >= 64 {
		clear(m)
	}
	m[token] = rev
}

// Read returns the credential in the document under the key, or an error
// matching sdk.ErrNotFound when the key or the credential is absent.
func (p *provider) Read(ctx context.Context) (sdk.Credential, error) {
	cli, s, err := p.client(ctx)
	if err != nil {
		return sdk.Credential{}, err
	}
	cred, rev, err := p.get(ctx, cli, s)
	if err != nil {
		return sdk.Credential{}, err
	}
	p.mu.Lock()
	p.remember(p.seen, cred.RefreshToken, rev)
	p.mu.Unlock()
	return cred, nil
}

// get reads the document and the credential in it, with the key's
// ModRevision.
func (p *provider) get(ctx context.Context, cli *clientv3.Client, s *settings) (sdk.Credential, int64, error) {
	cctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	var resp *clientv3.GetResponse
	err := retry(cctx, func() (err error) {
		resp, err = cli.Get(cctx, s.key)
		return err
	})
	if err != nil {
		return sdk.Credential{}, 0, etcdError("read "+s.key+" from", s, err)
	}
	if len(resp.Kvs) == 0 {
		return sdk.Credential{}, 0, sdk.NotFound("etcd key %s holds nothing", s.key).WithHint(
			"put a credentials document there once, e.g. etcdctl put "+s.key+" < ~/.claude/.credentials.json",
			"after a login on any machine of the fleet")
	}
	kv := resp.Kvs[0]
	if len(kv.Value) > maxValueSize {
		return sdk.Credential{}, 0, fmt.Errorf("etcd key %s: larger than %d bytes; not a credentials document", s.key, maxValueSize)
	}
	_, cred, err := credjson.Parse(kv.Value, s.object)
	if errors.Is(err, credjson.ErrNoCredential) {
		return sdk.Credential{}, 0, sdk.NotFound("etcd key %s: %w", s.key, err).WithHint("log in again and put the new credentials document under " + s.key)
	}
	if err != nil {
		return sdk.Credential{}, 0, fmt.Errorf("etcd key %s: %w", s.key, err)
	}
	return cred, kv.ModRevision, nil
}

// Save writes cred into the document, keeping every other key, as a
// compare-and-swap: it succeeds only if the key is still at the revision
// the credential was refreshed from (or, for one not refreshed here, the
// revision it was read at), and, while this process holds the fleet lock,
// only if it still holds it. So a machine whose lease expired mid-refresh
// never overwrites a newer credential another machine saved.
func (p *provider) Save(ctx context.Context, cred sdk.Credential) error {
	cli, s, err := p.client(ctx)
	if err != nil {
		return err
	}
	if cred.AccessToken == "" {
		return fmt.Errorf("etcd key %s: refusing to save a credential with no access token", s.key)
	}
	p.mu.Lock()
	base, known := p.refreshd[cred.AccessToken]
	if !known {
		base, known = p.seen[cred.RefreshToken]
	}
	h := p.held
	p.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	var resp *clientv3.GetResponse
	err = retry(cctx, func() (err error) {
		resp, err = cli.Get(cctx, s.key)
		return err
	})
	if err != nil {
		return etcdError("save "+s.key+" to", s, err)
	}
	var old []byte
	rev := int64(0)
	if len(resp.Kvs) > 0 {
		old, rev = resp.Kvs[0].Value, resp.Kvs[0].ModRevision
	}
	if !known {
		base = rev // nothing read before: an atomic read-modify-write
	}
	if rev != base {
		return changedError(s, base, rev)
	}
	out, err := credjson.Merge(old, s.object, cred)
	if err != nil {
		return fmt.Errorf("etcd key %s: %w", s.key, err)
	}
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.key), "=", base)}
	if h != nil {
		conds = append(conds, h.mutex.IsOwner())
	}
	txn, landed, err := commit(cctx, cli, s.key, out, func() (*clientv3.TxnResponse, error) {
		return cli.Txn(cctx).If(conds...).
			Then(clientv3.OpPut(s.key, string(out)), clientv3.OpDelete(s.key+refreshingSuffix)).
			Else(clientv3.OpGet(s.key)).Commit()
	})
	if err != nil {
		return etcdError("save "+s.key+" to", s, err)
	}
	if !landed && !txn.Succeeded {
		now := int64(0)
		if kvs := txn.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			now = kvs[0].ModRevision
		}
		if now == base && h != nil {
			return fmt.Errorf("etcd key %s: not saving: this machine lost the fleet lock %s (its lease expired) before the save", s.key, s.lockKey)
		}
		return changedError(s, base, now)
	}
	p.mu.Lock()
	if txn != nil {
		p.remember(p.seen, cred.RefreshToken, txn.Header.Revision)
	}
	delete(p.refreshd, cred.AccessToken)
	p.mu.Unlock()
	return nil
}

func changedError(s *settings, base, now int64) error {
	return fmt.Errorf("etcd key %s changed since it was read (revision %d, now %d): another machine saved a newer credential; not overwriting it", s.key, base, now)
}

// commit runs a transaction that writes value under key. When a member
// goes away mid-request the write may or may not have landed: commit
// looks, and tries again only if it did not (the transaction's compare
// makes a second try safe). landed reports a write found in place after
// such a failure; txn is nil then.
func commit(ctx context.Context, cli *clientv3.Client, key string, value []byte, txnFn func() (*clientv3.TxnResponse, error)) (txn *clientv3.TxnResponse, landed bool, err error) {
	for {
		txn, err = txnFn()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return txn, false, err
		}
		if g, gerr := cli.Get(ctx, key); gerr == nil && len(g.Kvs) > 0 && bytes.Equal(g.Kvs[0].Value, value) {
			return nil, true, nil
		}
		select {
		case <-ctx.Done():
			return nil, false, err
		case <-time.After(retryPause):
		}
	}
}
