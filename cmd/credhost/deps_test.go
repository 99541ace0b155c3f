package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestColdPathLinksNoHeavyLibrary keeps libraries whose package
// initialisation is measured to slow every cold `credhost token` out of the
// binary: every linked package initialises on every call, whether or not
// the call uses it. The daemon's metrics use Prometheus's text encoder
// (github.com/prometheus/common/expfmt), not a client library that
// registers collectors at init; a fleet store's client ships as its own
// plugin executable. Test files may import anything: they are not linked.
func TestColdPathLinksNoHeavyLibrary(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain to list the binary's packages")
	}
	heavy := map[string]string{
		"github.com/prometheus/client_golang/": "its collectors register at init (+10-27 % of a go-plugin binary's initialisation)",
		"github.com/VictoriaMetrics/metrics":   "it reads cgroup and pressure files at init (+2-5 %)",
		"go.etcd.io/":                          "etcd's client adds a quarter to a third of a cold start; the fleet store is its own plugin",
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 50 {
		t.Fatalf("go list -deps listed %d packages; want the binary's whole closure", len(pkgs))
	}
	for _, p := range pkgs {
		for prefix, why := range heavy {
			if strings.HasPrefix(p, prefix) {
				t.Errorf("credhost links %s: %s", p, why)
			}
		}
	}
}
