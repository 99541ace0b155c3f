package daemon

import (
	"io"
	"time"
)

// metrics are the daemon's Prometheus metrics, served on PathMetrics.
//
// Work in progress: the method set is what the server calls; the library
// that writes the format is being chosen by its cost on the cold path of
// `credhost token` (every package linked into credhost initialises on
// every call), and until then nothing is recorded.
type metrics struct{}

func newMetrics() *metrics { return &metrics{} }

// refreshed counts one refresh attempt of provider's credential by its
// outcome: "ok", "adopted" (another process had refreshed), "failed".
func (m *metrics) refreshed(provider, outcome string) {}

// expiry records when the served token from provider expires (zero: unknown).
func (m *metrics) expiry(provider string, at time.Time) {}

// degraded records whether the served token is degraded.
func (m *metrics) degraded(on bool) {}

// served counts one answered request by path and HTTP status.
func (m *metrics) served(path string, status int) {}

// write writes every metric in the Prometheus text format.
func (m *metrics) write(w io.Writer) error { return nil }
