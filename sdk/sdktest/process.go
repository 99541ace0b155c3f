package sdktest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/conformance"
	"github.com/credhost/credhost/sdk/plugin"
)

// servePluginEnv marks a re-execution of a test binary as a plugin process.
const servePluginEnv = "CREDHOST_SDKTEST_SERVE_PLUGIN"

// ServeIfPlugin serves newProvider() as a plugin and exits when this test
// binary was started by Process; otherwise it returns at once. Call it first
// in TestMain:
//
//	func TestMain(m *testing.M) {
//		sdktest.ServeIfPlugin(func() sdk.Provider { return myplugin.New() })
//		os.Exit(m.Run())
//	}
func ServeIfPlugin(newProvider func() sdk.Provider) {
	if os.Getenv(servePluginEnv) != "1" {
		return
	}
	plugin.Serve(newProvider())
	os.Exit(0)
}

// Process re-executes the running test binary as a real plugin process (see
// ServeIfPlugin), with env added to its environment, and returns the
// Provider it serves, over the same go-plugin gRPC boundary the host uses.
// The process ends when the test does.
func Process(t testing.TB, env ...string) sdk.Provider {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), servePluginEnv+"=1"), env...)
	return Dial(t, cmd)
}

// Dial starts cmd as a plugin process and returns the Provider it serves,
// or fails the test saying why the plugin did not start (the words of
// `credhost plugin check`). The process ends when the test does, and must
// exit when asked.
func Dial(t testing.TB, cmd *exec.Cmd) sdk.Provider {
	t.Helper()
	// The same client setup as the host's (plugin.ClientConfig), and the
	// same explanation of a failed start as `credhost plugin check`'s.
	proc, err := conformance.Start(cmd, conformance.Options{
		Logger:       hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}),
		StartTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("start plugin %s: %v", cmd.Path, err)
	}
	// Ended as the host ends it; a plugin that does not exit when asked
	// fails the test, as it fails `credhost plugin check`'s exit check.
	t.Cleanup(func() {
		if err := proc.Close(); err != nil {
			t.Errorf("plugin %s: %v", cmd.Path, err)
		}
	})
	return proc.Provider
}

// Configure configures p and fails the test on error.
func Configure(t testing.TB, p sdk.Provider, name, configJSON string) sdk.Provider {
	t.Helper()
	if err := p.Configure(context.Background(), sdk.ConfigureRequest{Name: name, Config: []byte(configJSON)}); err != nil {
		t.Fatalf("Configure %s: %v", name, err)
	}
	return p
}

// testWriter sends plugin log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
