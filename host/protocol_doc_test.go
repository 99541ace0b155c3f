package host

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestProtocolDocMatchesTheHost: what sdk/proto/PROTOCOL.md says of the
// host's side (the environment a plugin gets, how it is ended, the
// default timeouts) is what the host does.
func TestProtocolDocMatchesTheHost(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../sdk/proto/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	words := strings.Fields(doc)
	for _, name := range append(append([]string{}, baseEnv...), baseEnvWindows...) {
		found := false
		for _, w := range words {
			if strings.Trim(w, "`(),.") == name || strings.TrimPrefix(strings.TrimSuffix(w, "`"), "`") == name {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("PROTOCOL.md does not list %s among the variables a plugin gets", name)
		}
	}
	seconds := func(d time.Duration) string { return strings.TrimSuffix(fmt.Sprintf("%g s", d.Seconds()), " s") + " s" }
	for _, want := range []string{
		"`" + controllerShutdown + "`",
		"exit within " + seconds(exitGrace),
		seconds(termGrace) + " later, SIGKILL",
		fmt.Sprintf("`plugins.start_timeout` (%s by default)", seconds(defaultStartTimeout)),
		fmt.Sprintf("(`plugins.call_timeout`, %s by default", seconds(defaultCallTimeout)),
		fmt.Sprintf("`refresh.timeout`,\n%s)", seconds(defaultRefreshTimeout)),
		fmt.Sprintf("at most %d KiB", maxTokenSize>>10),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("PROTOCOL.md lacks %q", want)
		}
	}
}
