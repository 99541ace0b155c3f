package plugin_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// tokenBytesEnv tells the plugin process how long a token to return.
const tokenBytesEnv = "CREDHOST_PLUGIN_TEST_TOKEN_BYTES"

func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(func() sdk.Provider { return sizedProvider{} })
	os.Exit(m.Run())
}

// sizedProvider reads a token of the length $CREDHOST_PLUGIN_TEST_TOKEN_BYTES
// says: a plugin that answers more than a client should take in.
type sizedProvider struct{}

func (sizedProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "sized"}, nil
}
func (sizedProvider) Configure(context.Context, sdk.ConfigureRequest) error { return nil }
func (sizedProvider) Read(context.Context) (sdk.Credential, error) {
	n, err := strconv.Atoi(os.Getenv(tokenBytesEnv))
	if err != nil {
		return sdk.Credential{}, fmt.Errorf("%s: %w", tokenBytesEnv, err)
	}
	return sdk.Credential{AccessToken: strings.Repeat("t", n)}, nil
}
func (sizedProvider) Save(context.Context, sdk.Credential) error { return sdk.ErrUnsupported }
func (sizedProvider) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{}, sdk.ErrUnsupported
}

// TestEveryClientCapsAPluginsMessage: a client built on ClientConfig (here
// sdktest's, the same one the host uses) refuses a message from a plugin
// above 1 MiB, well below gRPC's own 4 MiB default, and takes one below it.
func TestEveryClientCapsAPluginsMessage(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		bytes  int
		refuse bool
	}{
		"half a MiB": {bytes: 512 << 10},
		"two MiB":    {bytes: 2 << 20, refuse: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := sdktest.Process(t, tokenBytesEnv+"="+strconv.Itoa(tc.bytes))
			cred, err := p.Read(context.Background())
			switch {
			case tc.refuse && err == nil:
				t.Fatalf("read a %d-byte token; want the message refused", len(cred.AccessToken))
			case tc.refuse && !strings.Contains(err.Error(), "larger than max"):
				t.Fatalf("error %q; want gRPC's message-size refusal", err)
			case !tc.refuse && err != nil:
				t.Fatalf("read: %v", err)
			case !tc.refuse && len(cred.AccessToken) != tc.bytes:
				t.Fatalf("token of %d bytes; want %d", len(cred.AccessToken), tc.bytes)
			}
		})
	}
}
