//go:build linux

package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// closedURL is a token URL on a loopback port nothing listens on: every
// request to it is refused before a byte of it is sent.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/token"
}

// TestRefreshesThatNeverLeftTheMachineDoNotCount: a token endpoint that
// cannot be reached (connection refused: the request never left the
// machine) is no refresh cut short, since the endpoint cannot have rotated
// a token it never saw. However often that happens, the fleet still
// refreshes once the endpoint is back, rather than being told to log in
// again.
func TestRefreshesThatNeverLeftTheMachineDoNotCount(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1)
	srv := oauthtest.NewServer(t)
	key := newKey(t)
	access, refresh := srv.Issue()
	stale := sdk.Credential{AccessToken: access, RefreshToken: refresh, ExpiresAt: time.Now().Add(-time.Minute)}
	c.seed(key, stale)
	ctx := context.Background()

	down := configured(t, c, key, sdk.OAuthConfig{TokenURL: closedURL(t)})
	for i := range maxTries + 1 {
		h, err := down.Lock(ctx, lockOf(t, down))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := down.Refresh(ctx, stale); err == nil {
			t.Fatalf("try %d: a refresh against a closed port succeeded", i)
		}
		h.Release(ctx)
	}

	up := configured(t, c, key, sdk.OAuthConfig{TokenURL: srv.TokenURL()})
	h, err := up.Lock(ctx, lockOf(t, up))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	fresh, err := up.Refresh(ctx, stale)
	if err != nil {
		t.Fatalf("refresh once the endpoint is back: %v; want it refreshed (no request had reached the endpoint)", err)
	}
	if fresh.AccessToken == access || srv.Arrived() != 1 {
		t.Errorf("got access %q after %d requests; want a new token from exactly one", fresh.AccessToken, srv.Arrived())
	}
}
