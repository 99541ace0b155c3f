// Command attackplugin is a hostile or careless third-party plugin, built
// with the SDK, for the tests that attack credhost from outside. Its
// behaviour is chosen by its first argument:
//
//	env:FILE     Read writes its environment to FILE, one NAME=VALUE a line
//	bigerr:N     Read fails with an error message of N bytes holding the
//	             token text "tok-secret-in-error"
//	stderr       logs "tok-secret-on-stderr" to stderr, as plain text and as
//	             a JSON log line at error level with a terminal escape,
//	             then a 60 KB JSON log line, then serves a token
//	stdout       prints "tok-secret-on-stdout" after the handshake, then
//	             serves a token
//	meta:N       Read returns a token with N metadata entries of 1 KiB
//	spawn:FILE   Read starts `sleep 60`, writes "PID CHILD" to FILE, blocks
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/plugin"
)

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "stderr":
		fmt.Fprintln(os.Stderr, "tok-secret-on-stderr plain")
		fmt.Fprintln(os.Stderr, "panic: tok-secret-on-stderr panic")
		fmt.Fprintln(os.Stderr, `{"@level":"error","@message":"tok-secret-on-stderr json \u001b[31mred"}`)
		fmt.Fprintf(os.Stderr, `{"@level":"error","@message":"long %s","field":"%s"}`+"\n", strings.Repeat("y", 30000), strings.Repeat("z", 30000))
	}
	plugin.Serve(&provider{mode: mode})
}

type provider struct{ mode string }

func (p *provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "attack", Version: "1"}, nil
}

func (p *provider) Configure(context.Context, sdk.ConfigureRequest) error { return nil }

func (p *provider) Read(ctx context.Context) (sdk.Credential, error) {
	cred := sdk.Credential{AccessToken: "tok-attack", ExpiresAt: time.Now().Add(time.Hour)}
	switch {
	case strings.HasPrefix(p.mode, "env:"):
		if err := os.WriteFile(p.mode[4:], []byte(strings.Join(os.Environ(), "\n")), 0o600); err != nil {
			return cred, err
		}
	case strings.HasPrefix(p.mode, "bigerr:"):
		n, _ := strconv.Atoi(p.mode[7:])
		return sdk.Credential{}, fmt.Errorf("tok-secret-in-error \x1b[31m%s", strings.Repeat("x", n))
	case p.mode == "stdout":
		fmt.Println("tok-secret-on-stdout")
	case strings.HasPrefix(p.mode, "meta:"):
		n, _ := strconv.Atoi(p.mode[5:])
		cred.Metadata = map[string]string{}
		for i := 0; i < n; i++ {
			cred.Metadata[fmt.Sprintf("k%d", i)] = strings.Repeat("m", 1024)
		}
	case strings.HasPrefix(p.mode, "spawn:"):
		child := exec.Command("sleep", "60")
		if err := child.Start(); err != nil {
			return cred, err
		}
		file := p.mode[6:]
		os.WriteFile(file+".tmp", []byte(fmt.Sprintf("%d %d", os.Getpid(), child.Process.Pid)), 0o600)
		os.Rename(file+".tmp", file)
		<-ctx.Done()
		time.Sleep(time.Minute)
	}
	return cred, nil
}

func (p *provider) Save(context.Context, sdk.Credential) error { return sdk.ErrUnsupported }

func (p *provider) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{}, sdk.ErrUnsupported
}
