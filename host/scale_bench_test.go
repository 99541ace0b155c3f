package host

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chainModes is a chain of n in-process providers with the token in the
// last (last) or the first: the others hold nothing, as an unset variable
// or a missing file does.
func chainModes(n int, last bool) []string {
	modes := make([]string, n)
	for i := range modes {
		modes[i] = "notfound"
	}
	if last {
		modes[n-1] = "found:A"
	} else {
		modes[0] = "found:A"
	}
	return modes
}

// BenchmarkChainWalk times a walk of a chain of in-process providers,
// each case next to its floor, a chain of one provider holding the token,
// timed in the same loop (one floor walk, one chain walk, and so on), so a
// change of machine load hits both alike:
//
//	cold/N-last    New + Token + Close over N providers, the token in the
//	               last: every provider started, configured and read
//	cold/N-first   the same with the token in the first: one read
//	reread/N-...   Host.Reread on a started host: the walk alone, as
//	               credhost serve re-reads the chain every --staleness
//
// floor-ns/op and chain-ns/op are the two timings, chain/floor their
// ratio, and per-provider-ns the marginal cost of each provider past the
// first, (chain - floor) / (N - 1).
// Run with: go test -run '^$' -bench ChainWalk -count 6 ./host | benchstat -
func BenchmarkChainWalk(b *testing.B) {
	ctx := context.Background()
	newHost := func(b *testing.B, modes []string) *Host {
		cfg := testConfig(false, modes...)
		h, err := New(cfg, WithBuiltins(scriptedBuiltins(cfg)))
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	cold := func(b *testing.B, modes []string) time.Duration {
		start := time.Now()
		h := newHost(b, modes)
		res, err := h.Token(ctx)
		if err != nil || res.Credential.AccessToken != "tok-secret-A" {
			b.Fatalf("Token over %d providers: %v; want the token", len(modes), err)
		}
		h.Close()
		return time.Since(start)
	}
	for _, n := range []int{1, 4, 16} {
		for _, last := range []bool{true, false} {
			if n == 1 && !last {
				continue
			}
			where := "last"
			if !last {
				where = "first"
			}
			modes := chainModes(n, last)
			name := fmt.Sprintf("%d-%s", n, where)
			b.Run("cold/"+name, func(b *testing.B) {
				var floorT, chainT time.Duration
				k := 0
				for b.Loop() {
					floorT += cold(b, chainModes(1, true))
					chainT += cold(b, modes)
					k++
				}
				reportChain(b, k, n, floorT, chainT)
			})
			b.Run("reread/"+name, func(b *testing.B) {
				floor, chain := newHost(b, chainModes(1, true)), newHost(b, modes)
				defer floor.Close()
				defer chain.Close()
				reread := func(h *Host) time.Duration {
					start := time.Now()
					res, err := h.Reread(ctx)
					if err != nil || res.Credential.AccessToken != "tok-secret-A" {
						b.Fatalf("Reread: %v; want the token", err)
					}
					return time.Since(start)
				}
				reread(floor) // start every provider: the walks below are warm
				reread(chain)
				var floorT, chainT time.Duration
				k := 0
				b.ReportAllocs()
				for b.Loop() {
					floorT += reread(floor)
					chainT += reread(chain)
					k++
				}
				reportChain(b, k, n, floorT, chainT)
			})
		}
	}
}

// reportChain reports a chain's walk next to its floor's, their ratio and
// the marginal cost per provider past the first.
func reportChain(b *testing.B, k, n int, floorT, chainT time.Duration) {
	b.ReportMetric(float64(floorT.Nanoseconds())/float64(k), "floor-ns/op")
	b.ReportMetric(float64(chainT.Nanoseconds())/float64(k), "chain-ns/op")
	b.ReportMetric(float64(chainT)/float64(floorT), "chain/floor")
	if n > 1 {
		b.ReportMetric(float64((chainT-floorT).Nanoseconds())/float64(k)/float64(n-1), "per-provider-ns")
	}
}

// BenchmarkTokenHeap serves a million cached Host.Token calls and reports
// the heap in use (after a collection) and the process's resident memory
// after a warm-up and after each quarter million: neither may grow with
// the calls served. The heap growing by more than 4 MiB fails the run (a
// generous bound: a leak of even a few bytes a call is 4 MB over a
// million). One run is the measurement (b.N is not used):
// go test -run '^$' -bench TokenHeap -benchtime 1x ./host
func BenchmarkTokenHeap(b *testing.B) {
	cfg := testConfig(false, "notfound", "found:A")
	h, err := New(cfg, WithBuiltins(scriptedBuiltins(cfg)))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	const total, quarter = 1_000_000, 250_000
	serveN := func(n int) {
		for range n {
			res, err := h.Token(ctx)
			if err != nil || res.Credential.AccessToken == "" {
				b.Fatalf("Token: %v", err)
			}
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for b.Loop() {
		serveN(10_000) // warm: the provider started, the cache filled
		warm := heap()
		b.ReportMetric(float64(warm)/1024, "heap-warm-kB")
		reportSelfRSS(b, "rss-warm-kB")
		start := time.Now()
		for q := 1; q <= total/quarter; q++ {
			serveN(quarter)
			b.ReportMetric(float64(heap())/1024, fmt.Sprintf("heap-%dk-kB", q*quarter/1000))
			reportSelfRSS(b, fmt.Sprintf("rss-%dk-kB", q*quarter/1000))
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/total, "ns/call")
		if end := heap(); end > warm+4<<20 {
			b.Fatalf("the heap grew from %d to %d bytes over %d cached Token calls; want no growth", warm, end, total)
		}
	}
}

// reportSelfRSS reports this process's VmRSS in kB, where /proc has it.
func reportSelfRSS(b *testing.B, unit string) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64); err == nil {
				b.ReportMetric(f, unit)
			}
			return
		}
	}
}
