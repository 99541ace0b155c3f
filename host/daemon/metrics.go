package daemon

import (
	"bytes"
	"cmp"
	"io"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// metrics are the daemon's Prometheus metrics, served on PathMetrics in the
// text exposition format:
//
//	credhost_refreshes_total{provider,outcome}  counter: refresh attempts by outcome
//	credhost_token_expiry_seconds{provider}     gauge: seconds until the served token expires
//	credhost_degraded                           gauge: 1 while the served token is degraded
//	credhost_requests_total{path,status}        counter: answered requests
//
// The format is written by Prometheus's own encoder
// (github.com/prometheus/common/expfmt, which escapes names, label values
// and help text and formats the numbers); the few counters are kept here.
// It was chosen by its cost on the cold path: the binary that runs the
// daemon also runs every cold `credhost token`, and every linked package
// initialises on every call. Over a program that only links go-plugin
// (GODEBUG=inittrace=1, two runs on a busy 2-core machine), the encoder's
// packages add under 1 % of package initialisation,
// VictoriaMetrics/metrics 2-5 % (it reads cgroup and pressure files at
// init), prometheus/client_golang 10-27 % (it registers its collectors at
// init). BenchmarkColdToken (.ci/bench) shows the encoder's share in every
// run: spawn/metricsfloor next to spawn/pluginfloor.
//
// No label holds a secret. Provider names are checked at config load to
// be letters, digits, '.', '_' and '-' written literally in the config
// file (a ${VAR} in a name is refused, so no environment value becomes
// one); they already name providers in every message and status row.
// Outcomes are this package's words, statuses numbers, and paths the API's
// own: any other path a client sends counts as "other", so a caller cannot
// put a token (or unbounded label values) into the metrics.
//
// All methods are safe for concurrent use.
type metrics struct {
	now func() time.Time

	mu        sync.Mutex
	refreshes map[refreshKey]uint64
	requests  map[requestKey]uint64
	// The served token's provider and expiry; expProvider is "" while the
	// expiry is unknown or nothing has been served.
	expProvider string
	expiryAt    time.Time
	isDegraded  bool
}

type refreshKey struct{ provider, outcome string }

type requestKey struct {
	path   string
	status int
}

// The metric families.
const (
	metricRefreshes = "credhost_refreshes_total"
	metricExpiry    = "credhost_token_expiry_seconds"
	metricDegraded  = "credhost_degraded"
	metricRequests  = "credhost_requests_total"
)

// Refresh outcomes, the values of the outcome label.
const (
	outcomeOK      = "ok"      // a new token was had and saved (or the save failure warned)
	outcomeAdopted = "adopted" // another process had already refreshed; its token was taken
	outcomeFailed  = "failed"  // the refresh failed; the old token is served degraded
	outcomeOther   = "other"   // anything else the server reports
)

// pathOther is the path label of every request outside the API.
const pathOther = "other"

func newMetrics() *metrics {
	return &metrics{
		now:       time.Now,
		refreshes: map[refreshKey]uint64{},
		requests:  map[requestKey]uint64{},
	}
}

// refreshed counts one refresh attempt of provider's credential by its
// outcome: "ok", "adopted" (another process had refreshed), "failed".
func (m *metrics) refreshed(provider, outcome string) {
	switch outcome {
	case outcomeOK, outcomeAdopted, outcomeFailed:
	default:
		outcome = outcomeOther
	}
	m.mu.Lock()
	m.refreshes[refreshKey{provider, outcome}]++
	m.mu.Unlock()
}

// expiry records when the served token from provider expires (zero:
// unknown). Only the served token has the gauge: when the token comes from
// another provider, or its expiry becomes unknown, the old series goes, so
// an alert on a low value never fires for a token nobody is served.
func (m *metrics) expiry(provider string, at time.Time) {
	if at.IsZero() {
		provider = ""
	}
	m.mu.Lock()
	m.expProvider, m.expiryAt = provider, at
	m.mu.Unlock()
}

// degraded records whether the served token is degraded.
func (m *metrics) degraded(on bool) {
	m.mu.Lock()
	m.isDegraded = on
	m.mu.Unlock()
}

// served counts one answered request by path and HTTP status. A path that
// is not the API's counts as "other".
func (m *metrics) served(path string, status int) {
	switch path {
	case PathToken, PathRefresh, PathStatus, PathHealth, PathMetrics:
	default:
		path = pathOther
	}
	m.mu.Lock()
	m.requests[requestKey{path, status}]++
	m.mu.Unlock()
}

// write writes every metric in the Prometheus text format, families and
// series in a stable order; a family with no series yet is left out.
func (m *metrics) write(w io.Writer) error {
	now := m.now()
	m.mu.Lock()
	refreshes := maps.Clone(m.refreshes)
	requests := maps.Clone(m.requests)
	expProvider, expiryAt, degraded := m.expProvider, m.expiryAt, m.isDegraded
	m.mu.Unlock()

	refreshFam := family(metricRefreshes, dto.MetricType_COUNTER,
		"Refresh attempts of each provider's credential, by outcome (ok; adopted: another process had refreshed; failed: the old token is served degraded; other).")
	for _, k := range slices.SortedFunc(maps.Keys(refreshes), func(a, b refreshKey) int {
		return cmp.Or(cmp.Compare(a.provider, b.provider), cmp.Compare(a.outcome, b.outcome))
	}) {
		refreshFam.Metric = append(refreshFam.Metric, counter(float64(refreshes[k]), "provider", k.provider, "outcome", k.outcome))
	}

	expiryFam := family(metricExpiry, dto.MetricType_GAUGE,
		"Seconds until the served token expires, negative once expired; absent while nothing is served or its expiry is unknown.")
	if expProvider != "" {
		expiryFam.Metric = append(expiryFam.Metric, gauge(expiryAt.Sub(now).Round(time.Second).Seconds(), "provider", expProvider))
	}

	degradedFam := family(metricDegraded, dto.MetricType_GAUGE,
		"1 while the served token is degraded (its refresh failed and the old token is served), else 0.")
	degradedFam.Metric = append(degradedFam.Metric, gauge(map[bool]float64{false: 0, true: 1}[degraded]))

	requestFam := family(metricRequests, dto.MetricType_COUNTER,
		"Requests answered, by API path (other: any other path) and HTTP status.")
	for _, k := range slices.SortedFunc(maps.Keys(requests), func(a, b requestKey) int {
		return cmp.Or(cmp.Compare(a.path, b.path), cmp.Compare(a.status, b.status))
	}) {
		requestFam.Metric = append(requestFam.Metric, counter(float64(requests[k]), "path", k.path, "status", strconv.Itoa(k.status)))
	}

	var b bytes.Buffer
	for _, f := range []*dto.MetricFamily{refreshFam, expiryFam, degradedFam, requestFam} {
		if len(f.Metric) == 0 {
			continue // the encoder refuses an empty family; Prometheus needs none
		}
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			return err
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func family(name string, typ dto.MetricType, help string) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: typ.Enum()}
}

func counter(v float64, labels ...string) *dto.Metric {
	return &dto.Metric{Label: labelPairs(labels), Counter: &dto.Counter{Value: proto.Float64(v)}}
}

func gauge(v float64, labels ...string) *dto.Metric {
	return &dto.Metric{Label: labelPairs(labels), Gauge: &dto.Gauge{Value: proto.Float64(v)}}
}

// labelPairs turns name, value, name, value, ... into label pairs.
func labelPairs(nv []string) []*dto.LabelPair {
	var out []*dto.LabelPair
	for i := 0; i+1 < len(nv); i += 2 {
		out = append(out, &dto.LabelPair{Name: proto.String(nv[i]), Value: proto.String(nv[i+1])})
	}
	return out
}
