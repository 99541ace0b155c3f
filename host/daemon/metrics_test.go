package daemon

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape writes m and parses the output with Prometheus's own text parser,
// failing the test on anything it refuses.
func scrape(t *testing.T, m *metrics) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	var b bytes.Buffer
	if err := m.write(&b); err != nil {
		t.Fatalf("write: %v", err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses the output: %v\n%s", err, b.String())
	}
	return fams, b.String()
}

// sample finds the one sample of family name whose labels are exactly
// labels; ok is false when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, mt := range f.GetMetric() {
		if len(mt.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range mt.GetLabel() {
			match = match && labels[l.GetName()] == l.GetValue()
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return mt.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return mt.GetGauge().GetValue(), true
		default:
			return mt.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsParseAndCountAfterCalls(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)
	m := newMetrics()
	m.now = func() time.Time { return now }

	// Before anything happens: parsable, not degraded, no expiry series.
	fams, _ := scrape(t, m)
	if v, ok := sample(fams, metricDegraded, nil); !ok || v != 0 {
		t.Errorf("fresh degraded = %v (present %v); want 0", v, ok)
	}
	if f := fams[metricExpiry]; f != nil && len(f.GetMetric()) != 0 {
		t.Errorf("fresh metrics have an expiry series: %v", f)
	}

	m.refreshed("file", outcomeOK)
	m.refreshed("file", outcomeOK)
	m.refreshed("file", outcomeFailed)
	m.refreshed("corp.sts", outcomeAdopted)
	m.refreshed("file", "something new")
	m.expiry("file", now.Add(90*time.Second))
	m.degraded(true)
	for range 3 {
		m.served(PathToken, 200)
	}
	m.served(PathRefresh, 502)
	// A path is whatever a client sends; it never becomes a label.
	m.served("/v1/token/sk-ant-oat01-pathsecret", 404)
	m.served("/metrics/../x", 404)

	fams, text := scrape(t, m)
	want := []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string
		value  float64
	}{
		{metricRefreshes, dto.MetricType_COUNTER, map[string]string{"provider": "file", "outcome": "ok"}, 2},
		{metricRefreshes, dto.MetricType_COUNTER, map[string]string{"provider": "file", "outcome": "failed"}, 1},
		{metricRefreshes, dto.MetricType_COUNTER, map[string]string{"provider": "corp.sts", "outcome": "adopted"}, 1},
		{metricRefreshes, dto.MetricType_COUNTER, map[string]string{"provider": "file", "outcome": "other"}, 1},
		{metricExpiry, dto.MetricType_GAUGE, map[string]string{"provider": "file"}, 90},
		{metricDegraded, dto.MetricType_GAUGE, nil, 1},
		{metricRequests, dto.MetricType_COUNTER, map[string]string{"path": PathToken, "status": "200"}, 3},
		{metricRequests, dto.MetricType_COUNTER, map[string]string{"path": PathRefresh, "status": "502"}, 1},
		{metricRequests, dto.MetricType_COUNTER, map[string]string{"path": "other", "status": "404"}, 2},
	}
	for _, w := range want {
		if got := fams[w.name].GetType(); got != w.typ {
			t.Errorf("%s has type %v; want %v", w.name, got, w.typ)
		}
		if fams[w.name].GetHelp() == "" {
			t.Errorf("%s has no help text", w.name)
		}
		if v, ok := sample(fams, w.name, w.labels); !ok || v != w.value {
			t.Errorf("%s%v = %v (present %v); want %v", w.name, w.labels, v, ok, w.value)
		}
	}
	if n := len(fams[metricRequests].GetMetric()); n != 3 {
		t.Errorf("%d request series; want 3 (token 200, refresh 502, other 404)", n)
	}
	if strings.Contains(text, "pathsecret") || strings.Contains(text, "sk-ant") {
		t.Errorf("a path a client sent reached the output:\n%s", text)
	}

	// Time passes: the gauge counts down at scrape time, below zero once
	// the token has expired.
	now = now.Add(2 * time.Minute)
	fams, _ = scrape(t, m)
	if v, _ := sample(fams, metricExpiry, map[string]string{"provider": "file"}); v != -30 {
		t.Errorf("expiry two minutes on = %v; want -30", v)
	}
	m.degraded(false)
	fams, _ = scrape(t, m)
	if v, _ := sample(fams, metricDegraded, nil); v != 0 {
		t.Errorf("degraded after recovery = %v; want 0", v)
	}
}

// Only the served token has an expiry series: an alert on a low value must
// not fire for a provider that no longer serves.
func TestMetricsExpiryFollowsTheServedToken(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)
	steps := []struct {
		provider string
		at       time.Time
		want     map[string]float64 // provider -> seconds; empty: no series
	}{
		{"file", now.Add(time.Hour), map[string]float64{"file": 3600}},
		{"file", now.Add(2 * time.Hour), map[string]float64{"file": 7200}},
		{"keychain", now.Add(time.Minute), map[string]float64{"keychain": 60}},
		{"oauth-env", time.Time{}, map[string]float64{}},
		{"file", now.Add(time.Second), map[string]float64{"file": 1}},
	}
	m := newMetrics()
	m.now = func() time.Time { return now }
	for i, s := range steps {
		m.expiry(s.provider, s.at)
		fams, text := scrape(t, m)
		series := fams[metricExpiry].GetMetric()
		if len(series) != len(s.want) {
			t.Fatalf("step %d (%s): %d expiry series; want %d\n%s", i, s.provider, len(series), len(s.want), text)
		}
		for p, secs := range s.want {
			if v, ok := sample(fams, metricExpiry, map[string]string{"provider": p}); !ok || v != secs {
				t.Errorf("step %d: expiry{provider=%q} = %v (present %v); want %v", i, p, v, ok, secs)
			}
		}
	}
}

// A hand-built Config is not checked like a loaded one: whatever its names
// hold, the output stays parsable and the name reads back unchanged.
func TestMetricsEscapeLabelValues(t *testing.T) {
	t.Parallel()
	names := map[string]string{
		"quote":     `a"b`,
		"backslash": `a\b`,
		"newline":   "a\nb",
		"all":       "\\\"\n\\n",
	}
	for label, name := range names {
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			m := newMetrics()
			m.refreshed(name, outcomeOK)
			m.expiry(name, time.Now().Add(time.Hour))
			fams, _ := scrape(t, m)
			if _, ok := sample(fams, metricRefreshes, map[string]string{"provider": name, "outcome": "ok"}); !ok {
				t.Errorf("no refresh series for provider %q", name)
			}
			if _, ok := sample(fams, metricExpiry, map[string]string{"provider": name}); !ok {
				t.Errorf("no expiry series for provider %q", name)
			}
		})
	}
}

// The server calls the metrics from every request's goroutine while a
// scrape writes them (run with -race).
func TestMetricsConcurrentUse(t *testing.T) {
	t.Parallel()
	m := newMetrics()
	const workers, calls = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				m.served(PathToken, 200)
				m.refreshed("file", outcomeOK)
				m.expiry([]string{"file", "keychain"}[(w+i)%2], time.Now().Add(time.Hour))
				m.degraded(i%2 == 0)
				if i%50 == 0 {
					var b bytes.Buffer
					if err := m.write(&b); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	fams, _ := scrape(t, m)
	if v, _ := sample(fams, metricRequests, map[string]string{"path": PathToken, "status": "200"}); v != workers*calls {
		t.Errorf("requests = %v; want %d", v, workers*calls)
	}
	if v, _ := sample(fams, metricRefreshes, map[string]string{"provider": "file", "outcome": "ok"}); v != workers*calls {
		t.Errorf("refreshes = %v; want %d", v, workers*calls)
	}
	if n := len(fams[metricExpiry].GetMetric()); n != 1 {
		t.Errorf("%d expiry series; want exactly the served one", n)
	}
}
