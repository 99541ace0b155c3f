package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// BenchmarkConcurrentToken times N callers asking one Host for the token
// at once (goroutines calling Host.Token; N = 1, 10, 100, 1000), each
// case next to its floor timed in the same loop (one floor burst, one
// host burst, and so on). The chain is the embedded default, built-ins
// in-process, the login in the real credentials file, refreshed against a
// real token endpoint (oauthtest: it rotates refresh tokens and revokes
// the family on reuse):
//
//	fresh/N    the token cached and valid. Floor: N goroutines each doing
//	           an atomic load and an expiry check (the cached Token's floor)
//	expired/N  the file and the host's memory both hold an expired token:
//	           before each burst, untimed, the file is rewritten with its
//	           own tokens but an expiry a minute ago and Host.Reread makes
//	           the host forget its cached token (it reads the expired one,
//	           which it does not cache); the burst is one refresh, saved,
//	           shared by N. Floor: N goroutines of which one makes one bare
//	           HTTP POST of a refresh grant to the same endpoint (its own
//	           login) and the rest wait for it (a sync.Once)
//
// Each call's latency is reported at the 50th and 99th percentile
// (p50-ns, p99-ns; floor-p50-ns, floor-p99-ns) and requests/expiry is
// the token requests each burst made: more than one for an expiry (the
// one-refresh rule), or any for a fresh token, fails the run.
// Run with: go test -run '^$' -bench ConcurrentToken -count 6 ./cmd/credhost | benchstat -
func BenchmarkConcurrentToken(b *testing.B) {
	srv := oauthtest.NewServer(b)
	home := b.TempDir()
	dir := filepath.Join(home, ".claude")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, ".credentials.json")
	writeLogin := func(access, refresh string, expires time.Time) {
		data := fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,"scopes":["user:inference"],"subscriptionType":"max"}}`,
			access, refresh, expires.UnixMilli())
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	access, refresh := srv.Issue()
	writeLogin(access, refresh, time.Now().Add(time.Hour))
	for _, kv := range [][2]string{{"HOME", home}, {"XDG_CONFIG_HOME", filepath.Join(home, ".config")},
		{"DBUS_SESSION_BUS_ADDRESS", ""}, {"ANTHROPIC_AUTH_TOKEN", ""}, {"CLAUDE_CODE_OAUTH_TOKEN", ""},
		{"CREDHOST_CONFIG", ""}, {"CREDHOST_BUILTIN", "in-process"}, {"CLAUDE_OAUTH_TOKEN_URL", srv.TokenURL()}} {
		b.Setenv(kv[0], kv[1])
	}
	cfg, err := host.LoadConfig(host.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	bi, err := builtins()
	if err != nil {
		b.Fatal(err)
	}
	// The file store itself, its Reads counted: how many walks reached it.
	var fileReads atomic.Int64
	file0 := bi["file"]
	newFile := file0.New
	file0.New = func() sdk.Provider { return readCounter{newFile(), &fileReads} }
	bi["file"] = file0
	h, err := host.New(cfg, host.WithBuiltins(bi))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	if _, err := h.Token(ctx); err != nil {
		b.Fatal(err)
	}

	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("fresh/%d", n), func(b *testing.B) {
			type cachedCred struct{ expires time.Time }
			var last atomic.Pointer[cachedCred]
			last.Store(&cachedCred{expires: time.Now().Add(time.Hour)})
			buffer := cfg.Refresh.Buffer.Std()
			floor := func() error {
				if c := last.Load(); c == nil || !time.Now().Add(buffer).Before(c.expires) {
					return fmt.Errorf("the floor's credential is inside the buffer")
				}
				return nil
			}
			call := func() error {
				res, err := h.Token(ctx)
				if err == nil && (res.Refreshed || res.Degraded) {
					err = fmt.Errorf("a fresh token came back refreshed %v, degraded %v", res.Refreshed, res.Degraded)
				}
				return err
			}
			var floorLat, lat []time.Duration
			before := srv.Requests()
			for b.Loop() {
				floorLat = append(floorLat, callers(b, n, floor)...)
				lat = append(lat, callers(b, n, call)...)
			}
			if got := srv.Requests() - before; got != 0 {
				b.Fatalf("%d token requests for a fresh token; want none", got)
			}
			b.ReportMetric(float64(srv.Requests()-before), "requests")
			reportLatency(b, floorLat, lat)
		})
	}

	// The floor refreshes a login of its own, so the two never share a
	// refresh token.
	_, floorRefresh := srv.Issue()
	floorClient := &http.Client{Timeout: 30 * time.Second}
	post := func() error {
		body, _ := json.Marshal(map[string]string{"grant_type": "refresh_token", "refresh_token": floorRefresh, "client_id": cfg.OAuth.ClientID})
		resp, err := floorClient.Post(srv.TokenURL(), "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
			return fmt.Errorf("the floor's refresh: status %d, %v", resp.StatusCode, err)
		}
		floorRefresh = tok.RefreshToken
		return nil
	}
	type fileDoc struct {
		O map[string]any `json:"claudeAiOauth"`
	}
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("expired/%d", n), func(b *testing.B) {
			var floorLat, lat []time.Duration
			var readSum int64
			reqSum := 0
			k := 0
			reuses := srv.Reuses()
			for b.Loop() {
				var once sync.Once
				var postErr error
				floorLat = append(floorLat, callers(b, n, func() error {
					once.Do(func() { postErr = post() })
					return postErr
				})...)

				b.StopTimer()
				// The file's own login, expired a minute ago; Reread
				// reads it, and a token inside the buffer is not cached.
				data, err := os.ReadFile(file)
				if err != nil {
					b.Fatal(err)
				}
				var doc fileDoc
				if err := json.Unmarshal(data, &doc); err != nil {
					b.Fatal(err)
				}
				old := doc.O["accessToken"].(string)
				writeLogin(old, doc.O["refreshToken"].(string), time.Now().Add(-time.Minute))
				if res, err := h.Reread(ctx); err != nil || !h.NeedsRefresh(res) {
					b.Fatalf("Reread after expiring the file: %v; want the expired token", err)
				}
				before, reads := srv.Requests(), fileReads.Load()
				b.StartTimer()

				var mu sync.Mutex
				tokens := map[string]int{}
				lat = append(lat, callers(b, n, func() error {
					res, err := h.Token(ctx)
					if err != nil {
						return err
					}
					if res.Degraded || res.Credential.AccessToken == old {
						return fmt.Errorf("an expired token came back degraded %v (%v), the old one %v", res.Degraded, res.DegradedReason, res.Credential.AccessToken == old)
					}
					mu.Lock()
					tokens[res.Credential.AccessToken]++
					mu.Unlock()
					return nil
				})...)
				got := srv.Requests() - before
				if got != 1 {
					b.Fatalf("%d token requests for one expiry shared by %d callers; want exactly 1", got, n)
				}
				reqSum += got
				readSum += fileReads.Load() - reads
				if len(tokens) != 1 {
					b.Fatalf("%d callers got %d different tokens; want one new token for all", n, len(tokens))
				}
				k++
			}
			if got := srv.Reuses() - reuses; got != 0 {
				b.Fatalf("the endpoint saw %d refresh-token reuses", got)
			}
			b.ReportMetric(float64(reqSum)/float64(k), "requests/expiry")
			b.ReportMetric(float64(readSum)/float64(k), "file-reads/expiry")
			reportLatency(b, floorLat, lat)
		})
	}
}

// readCounter is a provider whose Reads are counted; the rest passes
// through to it.
type readCounter struct {
	sdk.Provider
	reads *atomic.Int64
}

// Read counts the call and reads the provider.
func (r readCounter) Read(ctx context.Context) (sdk.Credential, error) {
	r.reads.Add(1)
	return r.Provider.Read(ctx)
}

// Check passes through to the provider's, if it has one.
func (r readCounter) Check(ctx context.Context) ([]sdk.Finding, error) {
	if c, ok := r.Provider.(sdk.Checker); ok {
		return c.Check(ctx)
	}
	return nil, nil
}

// callers runs f in n goroutines released at once and returns each call's
// latency; any error fails the run.
func callers(b *testing.B, n int, f func() error) []time.Duration {
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			t := time.Now()
			errs[i] = f()
			lat[i] = time.Since(t)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return lat
}

// reportLatency reports the 50th and 99th percentile of each call's
// latency, the host's and its floor's, and the ratios.
func reportLatency(b *testing.B, floorLat, lat []time.Duration) {
	slices.Sort(floorLat)
	slices.Sort(lat)
	pct := func(l []time.Duration, p int) float64 { return float64(l[(len(l)-1)*p/100].Nanoseconds()) }
	b.ReportMetric(pct(floorLat, 50), "floor-p50-ns")
	b.ReportMetric(pct(floorLat, 99), "floor-p99-ns")
	b.ReportMetric(pct(lat, 50), "p50-ns")
	b.ReportMetric(pct(lat, 99), "p99-ns")
	b.ReportMetric(pct(lat, 50)/pct(floorLat, 50), "p50/floor")
	b.ReportMetric(pct(lat, 99)/pct(floorLat, 99), "p99/floor")
}
