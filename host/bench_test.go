package host

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// BenchmarkCachedToken times Host.Token serving its cached credential,
// next to its floor in the same run:
//
//	floor        an atomic load of the cached value and its expiry check
//	             against the clock and the buffer
//	token/plain  Host.Token, a credential with tokens and an expiry
//	token/full   the same with scopes and metadata (a Claude login's)
//
// Target: at most 2× the floor, 0 allocations.
// Run with: go test -run '^$' -bench CachedToken -count 6 ./host | benchstat -
func BenchmarkCachedToken(b *testing.B) {
	expires := time.Now().Add(time.Hour)
	buffer := 5 * time.Minute
	b.Run("floor", func(b *testing.B) {
		type cachedCred struct {
			cred sdk.Credential
		}
		var last atomic.Pointer[cachedCred]
		last.Store(&cachedCred{cred: sdk.Credential{AccessToken: "tok", ExpiresAt: expires}})
		b.ReportAllocs()
		for b.Loop() {
			c := last.Load()
			if c == nil || !time.Now().Add(buffer).Before(c.cred.ExpiresAt) {
				b.Fatal("the floor's credential is inside the buffer")
			}
		}
	})
	creds := map[string]sdk.Credential{
		"plain": {AccessToken: "tok-access", RefreshToken: "tok-refresh", ExpiresAt: expires},
		"full": {AccessToken: "tok-access", RefreshToken: "tok-refresh", ExpiresAt: expires,
			Scopes:   []string{"user:inference", "user:profile", "user:sessions:claude_code"},
			Metadata: map[string]string{"subscriptionType": "max", "clientId": "id"}},
	}
	for _, name := range []string{"plain", "full"} {
		b.Run("token/"+name, func(b *testing.B) {
			cred := creds[name]
			cfg := testConfig(false, "bench")
			h, err := New(cfg, WithBuiltins(map[string]Builtin{"bench": {New: func() sdk.Provider {
				return sdktest.Fake{ReadF: func(context.Context) (sdk.Credential, error) { return cred.Clone(), nil }}
			}}}))
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			ctx := context.Background()
			if _, err := h.Token(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Token(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWarmRead times a Read through a started plugin process, next to
// its floor in the same run:
//
//	floor  a bare gRPC call of the plugin's Read on the same connection,
//	       its answer (the same bytes) taken as they come
//	read   the host's read of that provider: the call bounded by the call
//	       timeout, the answer decoded and checked
//
// Target: at most 1.3× the floor.
// Run with: go test -run '^$' -bench WarmRead -count 6 ./host | benchstat -
func BenchmarkWarmRead(b *testing.B) {
	h, err := New(testConfig(true, "found:A"))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	if _, err := h.Token(ctx); err != nil {
		b.Fatal(err)
	}
	m := h.members[0]
	conn := m.client.conn
	b.Run("floor", func(b *testing.B) {
		var resp []byte // rawCodec (rawplugin_test.go) passes the bytes through
		b.ReportAllocs()
		for b.Loop() {
			if err := conn.Invoke(ctx, "/credhost.v1.Provider/Read", []byte{}, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
				b.Fatal(err)
			}
			if len(resp) == 0 {
				b.Fatal("an empty answer")
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.read(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
