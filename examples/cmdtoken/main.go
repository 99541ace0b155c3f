// Command cmdtoken is an example third-party credhost plugin, built with
// github.com/credhost/credhost/sdk and nothing else from credhost: it runs a
// command you name (a corporate CLI, `vault read`, `op read`, …) and serves
// the first line of its output as the access token. It is read-only.
//
// Config:
//
//	argv: [PROGRAM, ARGS...]   the command; it gets no shell
//	timeout: 5s                how long it may take (default 5s)
//	expires_in: 1h             optional lifetime of each token it prints
//
// Use it from a credhost config (pin it with its sha256):
//
//   - name: corp
//     command: /usr/local/bin/cmdtoken
//     sha256: <sha256sum of the binary>
//     config: {argv: [corp-sts, token, --audience, claude]}
//
// The command's stderr is not forwarded (it may hold a secret); a failure is
// reported with its exit status only.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/plugin"
)

func main() { plugin.Serve(&provider{}) }

type provider struct {
	mu        sync.Mutex
	argv      []string
	timeout   time.Duration
	expiresIn time.Duration
}

var _ sdk.Provider = (*provider)(nil)

func (p *provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "cmdtoken", Version: "1"}, nil
}

func (p *provider) Configure(_ context.Context, req sdk.ConfigureRequest) error {
	// Absent keys keep these defaults: 5s to run the command, no expiry.
	c := struct {
		Argv      []string     `json:"argv"`
		Timeout   sdk.Duration `json:"timeout"`
		ExpiresIn sdk.Duration `json:"expires_in"`
	}{Timeout: sdk.Duration(5 * time.Second)}
	if err := req.DecodeConfig(&c); err != nil {
		return err
	}
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return sdk.InvalidConfig("key \"argv\" is required: the command that prints the token")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.argv, p.timeout, p.expiresIn = c.Argv, c.Timeout.Std(), c.ExpiresIn.Std()
	return nil
}

func (p *provider) Read(ctx context.Context) (sdk.Credential, error) {
	p.mu.Lock()
	argv, timeout, expiresIn := p.argv, p.timeout, p.expiresIn
	p.mu.Unlock()
	if len(argv) == 0 {
		return sdk.Credential{}, errors.New("cmdtoken used before Configure")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return sdk.Credential{}, fmt.Errorf("%s did not finish within %s", argv[0], timeout)
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return sdk.Credential{}, fmt.Errorf("%s failed (%s)", argv[0], ee.ProcessState)
		}
		return sdk.Credential{}, fmt.Errorf("%s: %w", argv[0], err)
	}
	line, _, _ := strings.Cut(out.String(), "\n")
	token := strings.TrimSpace(line)
	if token == "" {
		return sdk.Credential{}, sdk.NotFound("%s printed no token", argv[0])
	}
	cred := sdk.Credential{AccessToken: token}
	if expiresIn > 0 {
		cred.ExpiresAt = time.Now().Add(expiresIn)
	}
	return cred, nil
}

func (p *provider) Save(context.Context, sdk.Credential) error {
	return sdk.Unsupported("cmdtoken is read-only")
}

func (p *provider) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{}, sdk.Unsupported("cmdtoken is read-only; its command mints fresh tokens")
}
