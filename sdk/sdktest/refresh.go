package sdktest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// testClientID is the client id the refresh tests configure and their
// token endpoint insists on.
const testClientID = "sdktest-client"

// RunRefresh runs the refresh tests as subtests of t; Run runs them too. It
// is exported for a provider whose store a test cannot reach (a keyring
// absent here) but whose Refresh, which never touches the store, can still
// be tested, in-process and across the plugin boundary.
//
// Each test gives newProvider an empty store and an oauth block pointed at
// its own rotating token endpoint (sdk/oauth/oauthtest: each refresh token
// works once; presenting a used one revokes the whole family), so
// Setup.Seed is nil and the store is never read. A provider whose Info
// then claims CanRefresh must: answer with a new access token and the
// rotated refresh token, whose next refresh works; keep the refresh token
// it was given when the endpoint sends no new one; report a used refresh
// token as sdk.ErrInvalidGrant, with no token in the message; and send each
// refresh token at most once per call, even when the endpoint fails (a
// second try with the same token would be a reuse, and revoke the family).
// A provider that does not claim CanRefresh must answer sdk.ErrUnsupported
// without calling the endpoint.
func RunRefresh(t *testing.T, newProvider Factory) {
	t.Helper()
	ctx := context.Background()

	// endpoint starts a token endpoint and a provider configured to use it,
	// and a credential holding the endpoint's first tokens, expired.
	endpoint := func(t *testing.T, body string) (*oauthtest.Server, sdk.Provider, sdk.Credential) {
		t.Helper()
		srv := oauthtest.NewServer(t)
		srv.ClientID = testClientID
		p := newProvider(t, Setup{OAuth: sdk.OAuthConfig{TokenURL: srv.TokenURL(), ClientID: testClientID, BodyFormat: body}})
		access, refresh := srv.Issue()
		stale := sampleCredential("stale")
		stale.AccessToken, stale.RefreshToken = access, refresh
		stale.ExpiresAt = time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli())
		return srv, p, stale
	}

	srv, p, stale := endpoint(t, oauth.BodyForm)
	if !mustInfo(t, p).CanRefresh {
		t.Run("Unsupported", func(t *testing.T) {
			_, err := p.Refresh(ctx, stale)
			if !errors.Is(err, sdk.ErrUnsupported) {
				t.Fatalf("Refresh on a provider without CanRefresh, given a token endpoint: got %v; want sdk.ErrUnsupported", err)
			}
			if n := srv.Arrived(); n != 0 {
				t.Errorf("the token endpoint got %d requests from a provider that cannot refresh; want none", n)
			}
		})
		return
	}

	for _, body := range []string{oauth.BodyForm, oauth.BodyJSON} {
		t.Run("Rotates/"+body, func(t *testing.T) {
			srv, p, stale := endpoint(t, body)
			before := time.Now()
			fresh, err := p.Refresh(ctx, stale)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if fresh.AccessToken == "" || fresh.AccessToken == stale.AccessToken {
				t.Errorf("Refresh: access token %s; want a new one (was %s)", fresh.Fingerprint(), stale.Fingerprint())
			}
			if fresh.RefreshToken == "" || fresh.RefreshToken == stale.RefreshToken {
				t.Errorf("Refresh: refresh token %s; want the rotated one the endpoint sent (was %s)",
					sdk.Fingerprint(fresh.RefreshToken), sdk.Fingerprint(stale.RefreshToken))
			}
			// The endpoint grants an hour; generous bounds either side.
			if fresh.ExpiresAt.Before(before.Add(30*time.Minute)) || fresh.ExpiresAt.After(time.Now().Add(2*time.Hour)) {
				t.Errorf("Refresh: expiry %v; want about an hour from now (the endpoint's expires_in)", fresh.ExpiresAt)
			}
			if n := srv.Requests(); n != 1 {
				t.Errorf("one Refresh sent %d token requests; want 1", n)
			}
			// The rotated token is the family's live one: the next
			// refresh, from what Refresh returned, works.
			next, err := p.Refresh(ctx, fresh)
			if err != nil {
				t.Fatalf("second Refresh, from the first one's answer: %v", err)
			}
			if next.AccessToken == fresh.AccessToken || next.RefreshToken == fresh.RefreshToken {
				t.Errorf("second Refresh: want new tokens again")
			}
			if n := srv.Reuses(); n != 0 {
				t.Errorf("the endpoint saw %d refresh-token reuses; want none", n)
			}
		})
	}

	t.Run("KeepsRefreshTokenWhenNoneSent", func(t *testing.T) {
		srv, p, stale := endpoint(t, oauth.BodyForm)
		srv.SetMode(oauthtest.NoRefreshToken)
		fresh, err := p.Refresh(ctx, stale)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if fresh.AccessToken == "" || fresh.AccessToken == stale.AccessToken {
			t.Errorf("Refresh: access token %s; want a new one", fresh.Fingerprint())
		}
		if fresh.RefreshToken != stale.RefreshToken {
			t.Errorf("Refresh: refresh token %s; want the one it was given, %s, kept: the endpoint sent none",
				sdk.Fingerprint(fresh.RefreshToken), sdk.Fingerprint(stale.RefreshToken))
		}
	})

	t.Run("ReuseIsInvalidGrant", func(t *testing.T) {
		srv, p, stale := endpoint(t, oauth.BodyForm)
		fresh, err := p.Refresh(ctx, stale)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		// Another process refreshing from the same, now used, token.
		_, err = p.Refresh(ctx, stale)
		if !errors.Is(err, sdk.ErrInvalidGrant) {
			t.Fatalf("Refresh with a used refresh token: got %v; want an error wrapping sdk.ErrInvalidGrant", err)
		}
		for _, tok := range []string{stale.AccessToken, stale.RefreshToken, fresh.AccessToken, fresh.RefreshToken} {
			if strings.Contains(err.Error(), tok) {
				t.Errorf("the error shows a token (%s): %q", sdk.Fingerprint(tok), err)
			}
		}
		if n := srv.Requests(); n != 2 {
			t.Errorf("two Refreshes sent %d token requests; want 2", n)
		}
		if n := srv.Reuses(); n != 1 {
			t.Errorf("the endpoint saw %d reuses; want the 1 the test made", n)
		}
	})

	t.Run("FailureSendsTheTokenOnce", func(t *testing.T) {
		srv, p, stale := endpoint(t, oauth.BodyForm)
		for fault, mode := range map[string]oauthtest.Mode{
			"HTTP 500": oauthtest.ServerError, "an HTML page": oauthtest.HTML, "no access token": oauthtest.MissingAccessToken,
		} {
			srv.SetMode(mode)
			before := srv.Arrived()
			_, err := p.Refresh(ctx, stale)
			if err == nil || errors.Is(err, sdk.ErrInvalidGrant) || errors.Is(err, sdk.ErrUnsupported) {
				t.Errorf("Refresh against an endpoint answering %s: got %v; want a plain failure", fault, err)
			}
			if n := srv.Arrived() - before; n != 1 {
				t.Errorf("Refresh against an endpoint answering %s sent the refresh token %d times; want once", fault, n)
			}
		}
		// None of the failures spent the token, and none was a reuse.
		srv.SetMode(oauthtest.Normal)
		if _, err := p.Refresh(ctx, stale); err != nil {
			t.Errorf("Refresh once the endpoint works again: %v", err)
		}
		if n := srv.Reuses(); n != 0 {
			t.Errorf("the endpoint saw %d refresh-token reuses; want none", n)
		}
	})
}
