package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	sdkplugin "github.com/credhost/credhost/sdk/plugin"
)

// helperArg marks a re-execution of this test binary as a plugin process
// (go-plugin's re-exec pattern): `host.test credhost-test-plugin MODE`.
const helperArg = "credhost-test-plugin"

func TestMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == helperArg {
		serveHelper(os.Args[2])
		os.Exit(0)
	}
	if len(os.Args) >= 4 && os.Args[1] == hostHelperArg {
		runHostHelper(os.Args[2], os.Args[3])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveHelper runs a scripted provider as a real plugin process. Each mode
// is a fault a real plugin can have and that the host must survive.
func serveHelper(mode string) {
	switch mode {
	case "garbage":
		// A plugin that prints to stdout before the handshake.
		fmt.Println("hello from a plugin that prints")
		time.Sleep(time.Second)
		return
	case "exit":
		// A plugin that dies before the handshake.
		os.Exit(3)
	}
	if p := boundaryProvider(mode); p != nil {
		sdkplugin.Serve(p)
		return
	}
	if marker, ok := strings.CutPrefix(mode, "slowsave:"); ok {
		sdkplugin.Serve(&slowSaveStore{marker: marker})
		return
	}
	sdkplugin.Serve(&scriptedProvider{mode: mode})
}

// scriptedProvider is a fake store whose behaviour is chosen by mode; it is
// used in-process and, through serveHelper, as a real plugin process.
//
//	found:TOKEN      Read returns TOKEN
//	notfound         Read returns sdk.ErrNotFound
//	fail             Read returns a plain error
//	crash            Read kills the process
//	hang             Read blocks until its context ends (or 1 minute)
//	empty            Read returns a credential with no access token
//	badconfig        Configure returns sdk.ErrInvalidConfig
type scriptedProvider struct {
	mode  string
	mu    sync.Mutex
	reads int
	saved []sdk.Credential
}

func (p *scriptedProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "scripted", Version: "test", CanSave: true}, nil
}

func (p *scriptedProvider) Configure(context.Context, sdk.ConfigureRequest) error {
	if p.mode == "badconfig" {
		return fmt.Errorf("%w: key \"path\" is required", sdk.ErrInvalidConfig)
	}
	return nil
}

func (p *scriptedProvider) Read(ctx context.Context) (sdk.Credential, error) {
	p.mu.Lock()
	p.reads++
	p.mu.Unlock()
	switch {
	case strings.HasPrefix(p.mode, "found:"):
		return sdk.Credential{
			AccessToken:  "tok-secret-" + strings.TrimPrefix(p.mode, "found:"),
			RefreshToken: "refresh-tok-" + strings.TrimPrefix(p.mode, "found:"),
			ExpiresAt:    time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		}, nil
	case p.mode == "notfound":
		return sdk.Credential{}, fmt.Errorf("%w: scripted store is empty", sdk.ErrNotFound)
	case p.mode == "fail":
		return sdk.Credential{}, errors.New("scripted store is broken")
	case p.mode == "crash":
		os.Exit(2)
	case p.mode == "hang":
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
		}
		return sdk.Credential{}, ctx.Err()
	case p.mode == "empty":
		return sdk.Credential{RefreshToken: "refresh-only"}, nil
	}
	return sdk.Credential{}, fmt.Errorf("unknown scripted mode %q", p.mode)
}

func (p *scriptedProvider) Save(_ context.Context, c sdk.Credential) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.saved = append(p.saved, c)
	return nil
}

func (p *scriptedProvider) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{}, sdk.ErrUnsupported
}
