package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
	"github.com/credhost/credhost/sdk/oauth"
)

// refreshingSuffix names the in-flight record beside the key (see
// inflight).
const refreshingSuffix = ".refreshing"

// maxTries is how many refreshes of one refresh token may start before one
// of them saves. The first is the refresh itself; the second is the one
// retry after a machine died (or lost its lease) mid-request, which cannot
// know whether the token endpoint had already rotated the token: if it had
// not, the retry completes the refresh; if it had, nobody holds the new
// refresh token, the retry is refused as a reuse, and the record makes
// every later refresh stop without presenting the token again.
const maxTries = 2

// inflight is the record, under Key + ".refreshing", of a refresh under
// way: written under the fleet lock before the token request, deleted by
// the Save of its result in the same transaction as the write. Finding it
// for the refresh token in the store means a refresh of that token began
// and never saved. It holds a hash of the refresh token, never the token.
type inflight struct {
	// Token is the hex SHA-256 of the refresh token being refreshed.
	Token string `json:"token"`
	// Tries is how many refreshes of it have started.
	Tries int `json:"tries"`
	// Rejected: the token endpoint refused it (invalid_grant).
	Rejected bool `json:"rejected,omitempty"`
}

func tokenHash(refresh string) string {
	sum := sha256.Sum256([]byte(refresh))
	return hex.EncodeToString(sum[:])
}

// rejectedError matches sdk.ErrInvalidGrant: the refresh token is known
// to be dead, so it is not presented to the token endpoint again.
type rejectedError struct{ msg string }

func (e rejectedError) Error() string        { return e.msg }
func (e rejectedError) Is(target error) bool { return target == sdk.ErrInvalidGrant }

// Refresh runs the refresh_token grant against the shared oauth block's
// token endpoint. Under the fleet lock it first records the refresh in
// etcd (see inflight), so a refresh cut short by a machine's death is
// retried at most once fleet-wide and never turns into a loop of reuses.
func (p *provider) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	p.mu.Lock()
	client, h := p.oauth, p.held
	base, known := p.seen[cred.RefreshToken]
	p.mu.Unlock()
	if client == nil {
		return sdk.Credential{}, sdk.Unsupported("no oauth token_url configured")
	}
	before := 0 // refreshes of this token begun before this one
	if h != nil && cred.RefreshToken != "" {
		var err error
		if before, err = h.begin(ctx, cred.RefreshToken); err != nil {
			return sdk.Credential{}, err
		}
	}
	fresh, err := client.Refresh(ctx, cred)
	if h != nil && cred.RefreshToken != "" {
		h.finish(cred.RefreshToken, before, err)
	}
	if err != nil {
		return sdk.Credential{}, err
	}
	if known {
		p.mu.Lock()
		p.remember(p.refreshd, fresh.AccessToken, base)
		p.mu.Unlock()
	}
	return fresh, nil
}

// begin records, under the lock, that a refresh of refresh starts; it
// refuses when the record says the token is dead or was already retried.
// It returns how many refreshes of refresh the record counted before.
func (h *hold) begin(ctx context.Context, refresh string) (int, error) {
	s, key := h.s, h.s.key+refreshingSuffix
	cctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	// The document and the record, read together.
	var both *clientv3.TxnResponse
	err := retry(cctx, func() (err error) {
		both, err = h.cli.Txn(cctx).Then(clientv3.OpGet(s.key), clientv3.OpGet(key)).Commit()
		return err
	})
	if err != nil {
		return 0, etcdError("read "+s.key+" from", s, err)
	}
	// Refresh only the refresh token the store holds: one another machine
	// has already rotated would be a reuse. (The host refreshes the token
	// in hand when its re-read under the lock failed.) Answered as a
	// rejected grant, the host re-reads and takes the stored token.
	if doc := both.Responses[0].GetResponseRange().Kvs; len(doc) > 0 {
		if _, stored, err := credjson.Parse(doc[0].Value, s.object); err == nil && stored.RefreshToken != refresh {
			return 0, rejectedError{fmt.Sprintf("not refreshing: etcd key %s holds a newer refresh token than the one offered (another machine refreshed)", s.key)}
		}
	}
	rec := inflight{Token: tokenHash(refresh)}
	rev := int64(0)
	if kvs := both.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		rev = kvs[0].ModRevision
		var old inflight
		if json.Unmarshal(kvs[0].Value, &old) == nil && old.Token == rec.Token {
			switch {
			case old.Rejected:
				return 0, rejectedError{fmt.Sprintf("the token endpoint already refused the refresh token stored under %s (a refresh on another machine was cut short after the endpoint had rotated it): log in again", s.key)}
			case old.Tries >= maxTries:
				return 0, rejectedError{fmt.Sprintf("%d refreshes of the refresh token stored under %s were cut short before saving; not presenting it again: log in again", old.Tries, s.key)}
			}
			rec.Tries = old.Tries
		}
	}
	before := rec.Tries
	rec.Tries++
	val, _ := json.Marshal(rec)
	txn, landed, err := commit(cctx, h.cli, key, val, func() (*clientv3.TxnResponse, error) {
		return h.cli.Txn(cctx).If(h.mutex.IsOwner(), clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, string(val))).Commit()
	})
	if err != nil {
		return 0, etcdError("write "+key+" to", s, err)
	}
	if !landed && !txn.Succeeded {
		return 0, fmt.Errorf("not refreshing: this machine lost the fleet lock %s (its lease expired)", s.lockKey)
	}
	return before, nil
}

// finish updates the record after the token request: a refused token is
// marked dead, so no machine presents it again; an answer that rotated
// nothing (a 5xx, a 429) clears it; a request that never left this machine
// (refused connection, unknown host, a certificate not trusted) does not
// count, so the record goes back to the before refreshes begun earlier;
// a request sent with no answer (a timeout, a connection cut) leaves it,
// since the endpoint may have rotated the token. Success leaves it to the
// Save, which deletes it with its write.
func (h *hold) finish(refresh string, before int, err error) {
	if err == nil {
		return
	}
	s, key := h.s, h.s.key+refreshingSuffix
	ctx, cancel := context.WithTimeout(context.Background(), s.callTimeout)
	defer cancel()
	var oe *oauth.Error
	switch {
	case errors.Is(err, sdk.ErrInvalidGrant):
		rec, _ := json.Marshal(inflight{Token: tokenHash(refresh), Tries: maxTries, Rejected: true})
		h.cli.Txn(ctx).If(h.mutex.IsOwner()).Then(clientv3.OpPut(key, string(rec))).Commit()
	case errors.As(err, &oe) && oe.StatusCode != 0:
		h.cli.Txn(ctx).If(h.mutex.IsOwner()).Then(clientv3.OpDelete(key)).Commit()
	case neverSent(err):
		op := clientv3.OpDelete(key)
		if before > 0 {
			rec, _ := json.Marshal(inflight{Token: tokenHash(refresh), Tries: before})
			op = clientv3.OpPut(key, string(rec))
		}
		h.cli.Txn(ctx).If(h.mutex.IsOwner()).Then(op).Commit()
	}
}

// neverSent reports a token request that failed before any of it reached
// the endpoint: the connection could not be made (refused, no route, an
// unknown host) or the endpoint's certificate was not trusted. The
// endpoint cannot have rotated a token it never saw.
func neverSent(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	return (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &dns) ||
		errors.As(err, &cert) || errors.As(err, &unknown) || errors.As(err, &host)
}
