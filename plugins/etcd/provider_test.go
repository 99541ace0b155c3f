//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
	"github.com/credhost/credhost/sdk/sdktest"
)

func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(func() sdk.Provider { return newProvider() })
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var keySeq atomic.Int64

// newKey returns an etcd key no other test uses.
func newKey(t testing.TB) string {
	return fmt.Sprintf("/credhost-test/%s/%d", strings.ReplaceAll(t.Name(), "/", "_"), keySeq.Add(1))
}

// configJSON is the provider's config block for key on c.
func (c *cluster) configJSON(key string, extra ...string) string {
	eps := `"` + strings.Join(c.Endpoints(), `","`) + `"`
	parts := append([]string{fmt.Sprintf(`"endpoints":[%s]`, eps), fmt.Sprintf(`"key":%q`, key)}, extra...)
	if c.tls != nil {
		parts = append(parts, fmt.Sprintf(`"ca_file":%q,"cert_file":%q,"key_file":%q`, c.tls.caCert, c.tls.clientCert, c.tls.clientKey))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// seed puts cred under key as a credentials document.
func (c *cluster) seed(key string, cred sdk.Credential) {
	c.t.Helper()
	doc, err := credjson.Merge(nil, credjson.DefaultKey, cred)
	if err != nil {
		c.t.Fatal(err)
	}
	c.put(key, string(doc))
}

// TestConformance runs the SDK's conformance suite against a real etcd
// cluster, in-process and across a real plugin process.
func TestConformance(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	for _, mode := range []string{"in-process", "process"} {
		t.Run(mode, func(t *testing.T) {
			sdktest.Run(t, func(t *testing.T, s sdktest.Setup) sdk.Provider {
				key := newKey(t)
				if s.Seed != nil {
					c.seed(key, *s.Seed)
				}
				var p sdk.Provider = newProvider()
				if mode == "process" {
					p = sdktest.Process(t)
				}
				return s.Configure(t, p, "fleet", c.configJSON(key))
			})
		})
	}
}

func configured(t *testing.T, c *cluster, key string, oauth sdk.OAuthConfig, extra ...string) *provider {
	t.Helper()
	p := newProvider()
	if err := p.Configure(context.Background(), sdk.ConfigureRequest{Name: "fleet", Config: []byte(c.configJSON(key, extra...)), OAuth: oauth}); err != nil {
		t.Fatal(err)
	}
	return p
}

func lockOf(t *testing.T, p *provider) sdk.LockRequest {
	t.Helper()
	info, err := p.Info(context.Background())
	if err != nil || len(info.Locks) != 1 || info.Locks[0].Kind != sdk.LockProvider {
		t.Fatalf("Info: %+v, %v; want one provider lock", info, err)
	}
	return sdk.LockRequest{Lock: info.Locks[0]}
}

// TestFleetLockExcludesOtherMachines: two providers (two machines) take
// the fleet lock; the second waits until the first releases it, and a
// holder whose context ends lets it go.
func TestFleetLockExcludesOtherMachines(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	key := newKey(t)
	a, b := configured(t, c, key, sdk.OAuthConfig{}), configured(t, c, key, sdk.OAuthConfig{})
	ctx := context.Background()
	ha, err := a.Lock(ctx, lockOf(t, a))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = b.Lock(short, lockOf(t, b))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second machine's Lock while the first holds it: %v; want a timeout", err)
	}
	got := make(chan error, 1)
	go func() {
		h, err := b.Lock(ctx, lockOf(t, b))
		if err == nil {
			h.Release(ctx)
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second machine got the lock while the first held it (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := ha.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second machine did not get the lock within 5s of its release")
	}
	select {
	case <-ha.Lost():
		t.Error("a released hold reports itself lost")
	default:
	}

	// A hold whose context ends is let go without Release.
	hctx, hcancel := context.WithCancel(ctx)
	if _, err := a.Lock(hctx, lockOf(t, a)); err != nil {
		t.Fatal(err)
	}
	hcancel()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	hb, err := b.Lock(wctx, lockOf(t, b))
	if err != nil {
		t.Fatalf("the lock of a hold whose context ended was not let go: %v", err)
	}
	hb.Release(ctx)
}

// TestSaveRefusesToOverwriteANewerCredential: a machine that read the
// credential, refreshed it and saves after another machine saved a newer
// one (its lease expired meanwhile) must not overwrite it: Save is a
// compare-and-swap on the key's ModRevision.
func TestSaveRefusesToOverwriteANewerCredential(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	srv := oauthtest.NewServer(t)
	key := newKey(t)
	access, refresh := srv.Issue()
	c.seed(key, sdk.Credential{AccessToken: access, RefreshToken: refresh, ExpiresAt: time.Now().Add(-time.Minute)})
	ctx := context.Background()
	slow := configured(t, c, key, sdk.OAuthConfig{TokenURL: srv.TokenURL()})
	stale, err := slow.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := slow.Refresh(ctx, stale)
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile another machine saved a newer credential.
	newer := sdk.Credential{AccessToken: "newer-access", RefreshToken: "newer-refresh", ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Millisecond)}
	c.seed(key, newer)

	err = slow.Save(ctx, fresh)
	if err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Fatalf("Save over a newer credential: %v; want a refusal", err)
	}
	got, err := configured(t, c, key, sdk.OAuthConfig{}).Read(ctx)
	if err != nil || got.AccessToken != newer.AccessToken {
		t.Fatalf("etcd holds %s (%v); want the newer credential kept", got.Fingerprint(), err)
	}
}

// TestSaveRefusedAfterTheLockIsLost: a holder whose lease was revoked (as
// when it expires) cannot save even though the key did not change.
func TestSaveRefusedAfterTheLockIsLost(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	key := newKey(t)
	c.seed(key, sdk.Credential{AccessToken: "a1", RefreshToken: "r1"})
	ctx := context.Background()
	p := configured(t, c, key, sdk.OAuthConfig{})
	h, err := p.Lock(ctx, lockOf(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(ctx); err != nil {
		t.Fatal(err)
	}
	// Revoke the lease behind the hold from outside, as its expiry would.
	if _, err := c.client().Revoke(ctx, h.(*hold).session.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("the hold did not notice its lease was gone")
	}
	if h.Err() == nil || !strings.Contains(h.Err().Error(), "lost") {
		t.Errorf("Err after the lease went: %v", h.Err())
	}
	// The host checks Lost before it saves; the store's own guard is the
	// compare on the mutex key, tested here by saving with the lost hold
	// still recorded.
	p.mu.Lock()
	p.held = h.(*hold)
	p.mu.Unlock()
	err = p.Save(ctx, sdk.Credential{AccessToken: "a2", RefreshToken: "r2"})
	if err == nil || !strings.Contains(err.Error(), "lost the fleet lock") {
		t.Fatalf("Save after the lock was lost: %v; want a refusal", err)
	}
	if v, _ := c.get(key); !strings.Contains(v, `"a1"`) {
		t.Fatalf("etcd holds %s; want the old document untouched", v)
	}
}

// TestRefreshUnderTheLockOnlyOfTheStoredToken: under the fleet lock, a
// refresh token the store no longer holds (another machine rotated it;
// the host refreshes the token in hand when its re-read failed) is not
// presented: it would be a reuse. The answer matches sdk.ErrInvalidGrant,
// on which the host re-reads and takes the stored token.
func TestRefreshUnderTheLockOnlyOfTheStoredToken(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	srv := oauthtest.NewServer(t)
	key := newKey(t)
	access, refresh := srv.Issue()
	stale := sdk.Credential{AccessToken: access, RefreshToken: refresh, ExpiresAt: time.Now().Add(-time.Minute)}
	c.seed(key, stale)
	ctx := context.Background()
	p := configured(t, c, key, sdk.OAuthConfig{TokenURL: srv.TokenURL()})
	h, err := p.Lock(ctx, lockOf(t, p))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	c.seed(key, sdk.Credential{AccessToken: "rotated-elsewhere", RefreshToken: "rotated-refresh", ExpiresAt: time.Now().Add(time.Hour)})

	_, err = p.Refresh(ctx, stale)
	if !errors.Is(err, sdk.ErrInvalidGrant) || !strings.Contains(err.Error(), "another machine refreshed") {
		t.Fatalf("Refresh of a token the store no longer holds: %v; want a rejected grant saying why", err)
	}
	if srv.Arrived() != 0 {
		t.Errorf("%d token requests; want none", srv.Arrived())
	}
}

// TestCheckSaysWhatIsWrong: Check reports the members that answer, and
// whether the key holds a credential.
func TestCheckSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	key := newKey(t)
	ctx := context.Background()
	p := configured(t, c, key, sdk.OAuthConfig{})
	findings := func() string {
		t.Helper()
		fs, err := p.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, f := range fs {
			fmt.Fprintf(&b, "%s: %s (fix: %s)\n", f.Severity, f.Message, f.Fix)
		}
		return b.String()
	}
	if got := findings(); !strings.Contains(got, "ok: all 3 etcd members answer") || !strings.Contains(got, "warning: etcd key "+key+" holds nothing") || !strings.Contains(got, "etcdctl put") {
		t.Errorf("empty key:\n%s", got)
	}
	c.seed(key, sdk.Credential{AccessToken: "a", RefreshToken: "r"})
	c.stop(2)
	if got := findings(); !strings.Contains(got, "warning: 1 of 3 etcd members do not answer") || !strings.Contains(got, "ok: etcd key "+key+" holds a credential") {
		t.Errorf("one member stopped:\n%s", got)
	}
}
