package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	sdkplugin "github.com/credhost/credhost/sdk/plugin"
	"github.com/credhost/credhost/sdk/sdktest"
)

// helperArg marks a re-execution of this test binary as a plugin process
// (go-plugin's re-exec pattern): `host.test credhost-test-plugin MODE`.
const helperArg = "credhost-test-plugin"

func TestMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == helperArg {
		serveHelper(os.Args[2])
		os.Exit(0)
	}
	if len(os.Args) >= 3 && os.Args[1] == rawArg {
		serveRaw(os.Args[2])
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
	case "printstderr":
		// A Go plugin that prints on os.Stderr once it serves (go-plugin
		// sends that over its stdio service).
		p := scriptedProvider("found:A")
		read := p.ReadF
		p.ReadF = func(ctx context.Context) (sdk.Credential, error) {
			fmt.Fprintln(os.Stderr, "plain from a go plugin")
			return read(ctx)
		}
		sdkplugin.Serve(p)
		return
	case "leakstderr":
		// A plugin that logs the token it is about to return on its
		// stderr (file descriptor 2, as a plugin in any language writes
		// it), in a plain line and in a JSON line's other key, a moment
		// before it answers.
		p := scriptedProvider("found:LEAKEDLEAKED")
		read := p.ReadF
		p.ReadF = func(ctx context.Context) (sdk.Credential, error) {
			c, err := read(ctx)
			fd2 := os.NewFile(2, "stderr")
			fmt.Fprintf(fd2, "read %s\n", c.AccessToken)
			fmt.Fprintf(fd2, `{"@message":"read","@level":"info","token":%q}`+"\n", c.RefreshToken)
			time.Sleep(300 * time.Millisecond)
			return c, err
		}
		sdkplugin.Serve(p)
		return
	}
	if rest, ok := strings.CutPrefix(mode, "start:"); ok {
		mode = startupHelper(rest)
	}
	if p := boundaryProvider(mode); p != nil {
		sdkplugin.Serve(p)
		return
	}
	if marker, ok := strings.CutPrefix(mode, "slowsave:"); ok {
		sdkplugin.Serve(slowSaveStore(marker))
		return
	}
	sdkplugin.Serve(scriptedProvider(mode))
}

// startupHelper runs the start of a plugin in mode start:DIR:N:DELAY:MODE
// and returns MODE, which it then serves: it writes its pid to DIR/pid-PID,
// waits until N plugins did (0: no wait; it exits after 20 seconds of
// waiting, failing its start), then sleeps DELAY before its handshake.
func startupHelper(rest string) string {
	f := strings.SplitN(rest, ":", 4)
	dir, mode := f[0], f[3]
	n, _ := strconv.Atoi(f[1])
	delay, _ := time.ParseDuration(f[2])
	if err := os.WriteFile(filepath.Join(dir, "pid-"+strconv.Itoa(os.Getpid())), nil, 0o600); err != nil {
		os.Exit(4)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pids, _ := filepath.Glob(filepath.Join(dir, "pid-*"))
		if len(pids) >= n {
			break
		}
		if time.Now().After(deadline) {
			os.Exit(5)
		}
	}
	time.Sleep(delay)
	return mode
}

// scriptedProvider is a fake store whose behaviour is chosen by mode; it is
// used in-process and, through serveHelper, as a real plugin process. It
// saves nothing, accepting every Save, and cannot refresh.
//
//	found:TOKEN      Read returns TOKEN
//	notfound         Read returns sdk.ErrNotFound
//	fail             Read returns a plain error
//	crash            Read kills the process
//	hang             Read blocks until its context ends (or 1 minute)
//	empty            Read returns a credential with no access token
//	badconfig        Configure returns sdk.ErrInvalidConfig
func scriptedProvider(mode string) sdktest.Fake {
	return sdktest.Fake{
		InfoF: func(context.Context) (sdk.Info, error) {
			return sdk.Info{Name: "scripted", Version: "test", CanSave: true}, nil
		},
		ConfigureF: func(context.Context, sdk.ConfigureRequest) error {
			if mode == "badconfig" {
				return sdk.InvalidConfig("key \"path\" is required")
			}
			return nil
		},
		ReadF: func(ctx context.Context) (sdk.Credential, error) { return scriptedRead(ctx, mode) },
		SaveF: func(context.Context, sdk.Credential) error { return nil },
	}
}

func scriptedRead(ctx context.Context, mode string) (sdk.Credential, error) {
	switch {
	case strings.HasPrefix(mode, "found:"):
		return sdk.Credential{
			AccessToken:  "tok-secret-" + strings.TrimPrefix(mode, "found:"),
			RefreshToken: "refresh-tok-" + strings.TrimPrefix(mode, "found:"),
			ExpiresAt:    time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		}, nil
	case mode == "notfound":
		return sdk.Credential{}, sdk.NotFound("scripted store is empty")
	case mode == "fail":
		return sdk.Credential{}, errors.New("scripted store is broken")
	case mode == "crash":
		os.Exit(2)
	case mode == "hang":
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
		}
		return sdk.Credential{}, ctx.Err()
	case mode == "empty":
		return sdk.Credential{RefreshToken: "refresh-only"}, nil
	}
	return sdk.Credential{}, fmt.Errorf("unknown scripted mode %q", mode)
}
