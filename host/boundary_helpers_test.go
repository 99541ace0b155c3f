package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// hostHelperArg marks a re-execution of this test binary as a host process
// (`host.test credhost-test-host MODE DIR`), which a test can kill.
const hostHelperArg = "credhost-test-host"

// boundaryProvider returns the provider for the modes that probe the
// boundary between host and plugin, or nil for any other mode:
//
//	envdump              Read's metadata: the names in its environment,
//	                     its pid and its dumpable flag (Linux)
//	big:access:N         Read returns an access token of N bytes
//	big:refresh:N        Read returns a refresh token of N bytes
//	refreshbig:N         Read returns a token inside the expiry buffer;
//	                     Refresh returns an access token of N bytes
//	spawn:DIR:busy|idle  Configure starts a child (sleep) and writes
//	                     "PLUGIN_PID CHILD_PID" to DIR/pids; Read blocks
//	                     (busy) or returns a token (idle)
func boundaryProvider(mode string) sdk.Provider {
	switch {
	case mode == "envdump", strings.HasPrefix(mode, "big:"), strings.HasPrefix(mode, "spawn:"), strings.HasPrefix(mode, "refreshbig:"):
		return probeProvider(mode)
	}
	return nil
}

// probeProvider is the fake provider of boundaryProvider's modes. It saves
// nothing: no probe ever has anything worth saving, so Save fails loudly.
func probeProvider(mode string) sdktest.Fake {
	f := sdktest.Fake{
		InfoF: func(context.Context) (sdk.Info, error) {
			return sdk.Info{Name: "probe", Version: "test", CanSave: true, CanRefresh: strings.HasPrefix(mode, "refreshbig:")}, nil
		},
		ConfigureF: func(context.Context, sdk.ConfigureRequest) error {
			if rest, ok := strings.CutPrefix(mode, "spawn:"); ok {
				return spawnChild(rest[:strings.LastIndexByte(rest, ':')])
			}
			return nil
		},
		ReadF: func(context.Context) (sdk.Credential, error) { return probeRead(mode), nil },
		SaveF: func(context.Context, sdk.Credential) error { return errors.New("probe: Save was called") },
	}
	if n, ok := strings.CutPrefix(mode, "refreshbig:"); ok {
		f.RefreshF = func(context.Context, sdk.Credential) (sdk.Credential, error) {
			size, _ := strconv.Atoi(n)
			return sdk.Credential{AccessToken: strings.Repeat("a", size), ExpiresAt: time.Now().Add(time.Hour)}, nil
		}
	}
	return f
}

// spawnChild starts a child (sleep) and writes "PLUGIN_PID CHILD_PID" to
// dir/pids.
func spawnChild(dir string) error {
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		return err
	}
	pids := fmt.Sprintf("%d %d", os.Getpid(), child.Process.Pid)
	tmp := filepath.Join(dir, "pids.tmp")
	if err := os.WriteFile(tmp, []byte(pids), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "pids"))
}

func probeRead(mode string) sdk.Credential {
	cred := sdk.Credential{AccessToken: "tok-secret-probe", ExpiresAt: time.Now().Add(time.Hour)}
	switch {
	case mode == "envdump":
		var names []string
		for _, kv := range os.Environ() {
			name, _, _ := strings.Cut(kv, "=")
			names = append(names, name)
		}
		slices.Sort(names)
		cred.Metadata = map[string]string{"env": strings.Join(names, ","), "pid": strconv.Itoa(os.Getpid()), "dumpable": dumpable()}
	case strings.HasPrefix(mode, "big:"):
		f := strings.Split(mode, ":")
		n, _ := strconv.Atoi(f[2])
		if f[1] == "access" {
			cred.AccessToken = strings.Repeat("a", n)
		} else {
			cred.RefreshToken = strings.Repeat("r", n)
		}
	case strings.HasSuffix(mode, ":busy"):
		time.Sleep(time.Minute)
	case strings.HasPrefix(mode, "refreshbig:"):
		cred.RefreshToken, cred.ExpiresAt = "refresh-tok-probe", time.Now().Add(time.Minute)
	}
	return cred
}

// runHostHelper is a host process with one plugin in mode spawn:DIR:MODE:
// it asks for a token and, once the plugin answered (idle) or at once
// (busy), lives on until killed. It writes DIR/host-ready when the token
// came.
func runHostHelper(mode, dir string) {
	cfg := testConfig(true, "spawn:"+dir+":"+mode)
	cfg.Plugins.CallTimeout = Duration(10 * time.Minute)
	h, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		if _, err := h.Token(context.Background()); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "host-ready"), nil, 0o600)
		}
	}()
	time.Sleep(10 * time.Minute)
}
