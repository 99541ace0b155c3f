//go:build unix

package host

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestCloseEndsPluginsTogether: Close ends a chain's plugin processes at
// the same time, not one after the other: each of four plugins, asked to
// end, waits until all four were asked (they were started with the raw
// plugin's together option, which tells when all four asked).
func TestCloseEndsPluginsTogether(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 4
	var opts []string
	for range n - 1 {
		opts = append(opts, "together=4:"+dir)
	}
	opts = append(opts, "together=4:"+dir+",found")
	h, _ := newLevelHost(t, rawConfig(opts...), hclog.Warn)
	if _, err := h.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}
	h.Close()
	asked, _ := filepath.Glob(filepath.Join(dir, "[0-9]*[0-9]"))
	all, _ := filepath.Glob(filepath.Join(dir, "*.all"))
	if len(asked) != n || len(all) != n {
		t.Errorf("%d plugins asked to end, %d saw all %d asked at once; want %d", len(asked), len(all), n, n)
	}
}
