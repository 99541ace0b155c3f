// Command brokenplugin is a plugin that gets one thing wrong, for the tests
// of `credhost plugin check`. Its first argument says what:
//
//	wrong-cookie  expects another magic cookie value (go-plugin's Serve
//	              then refuses to run, as a plugin built against another
//	              handshake does)
//	no-mtls       serves plain gRPC, ignoring the client's certificate, and
//	              prints a handshake line without one
//	padded        prints its certificate as padded base64; a fake: when the
//	              certificate's length is a multiple of 3, standard base64
//	              has no padding, so it adds a stray '=', which fails alike
//	empty-token   Read answers a credential with an empty access token
//	hang          never prints its handshake line
//	hang-read     Read never answers, whatever its deadline
//	no-exit       does not exit when the host asks it to stop
//
// Otherwise it is a well-behaved read-only plugin with an empty store.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"os"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/plugin"
)

type provider struct{ mode string }

func (p provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "broken-" + p.mode}, nil
}

func (p provider) Configure(_ context.Context, req sdk.ConfigureRequest) error {
	var c struct{}
	return req.DecodeConfig(&c)
}

func (p provider) Read(ctx context.Context) (sdk.Credential, error) {
	switch p.mode {
	case "empty-token":
		return sdk.Credential{}, nil
	case "hang-read":
		select {}
	}
	return sdk.Credential{}, sdk.NotFound("the broken plugin's store is empty")
}

func (p provider) Save(context.Context, sdk.Credential) error {
	return sdk.Unsupported("the broken plugin is read-only")
}

func (p provider) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{}, sdk.Unsupported("the broken plugin cannot refresh")
}

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "wrong-cookie":
		hs := plugin.Handshake
		hs.MagicCookieValue = "not-credhost-s-value"
		goplugin.Serve(&goplugin.ServeConfig{HandshakeConfig: hs, GRPCServer: goplugin.DefaultGRPCServer})
		return
	case "no-mtls":
		os.Unsetenv("PLUGIN_CLIENT_CERT")
	case "padded":
		padHandshake()
	case "hang":
		select {}
	}
	plugin.Serve(provider{mode: mode})
	if mode == "no-exit" {
		select {}
	}
}

// padHandshake rewrites the handshake line go-plugin prints, giving it a
// padded certificate, and passes the rest of stdout through.
func padHandshake() {
	real := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	os.Stdout = w
	go func() {
		br := bufio.NewReader(r)
		line, _ := br.ReadString('\n')
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) >= 6 {
			der, _ := base64.RawStdEncoding.DecodeString(f[5])
			f[5] = base64.StdEncoding.EncodeToString(der)
			if !strings.HasSuffix(f[5], "=") {
				f[5] += "="
			}
		}
		real.WriteString(strings.Join(f, "|") + "\n")
		_, _ = io.Copy(real, br)
	}()
}
