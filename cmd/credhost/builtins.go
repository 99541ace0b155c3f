package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/plugins/env"
	"github.com/credhost/credhost/plugins/file"
	"github.com/credhost/credhost/sdk"
)

// builtinProviders are the providers compiled into credhost, by plugin name.
var builtinProviders = map[string]func() sdk.Provider{
	"env":      func() sdk.Provider { return env.New() },
	"file":     func() sdk.Provider { return file.New() },
	"keychain": func() sdk.Provider { return notBuilt("keychain") },
}

// builtins wires each built-in provider for the host: in-process it is a
// fresh value; as a plugin process it is this very binary, re-executed as
// `credhost plugin serve NAME`.
func builtins() (map[string]host.Builtin, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the credhost executable to serve built-in plugins: %w", err)
	}
	out := make(map[string]host.Builtin, len(builtinProviders))
	for name, newProvider := range builtinProviders {
		out[name] = host.Builtin{
			New:     newProvider,
			Command: func() *exec.Cmd { return exec.Command(self, "plugin", "serve", name) },
		}
	}
	return out, nil
}

// notBuilt stands in for a provider this build does not have yet: it holds
// nothing and says why, so the default chain still walks to the next store.
type notBuiltProvider struct{ name string }

func notBuilt(name string) sdk.Provider { return notBuiltProvider{name} }

func (p notBuiltProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: p.name, Version: "0"}, nil
}
func (p notBuiltProvider) Configure(context.Context, sdk.ConfigureRequest) error { return nil }
func (p notBuiltProvider) Read(context.Context) (sdk.Credential, error) {
	return sdk.Credential{}, fmt.Errorf("%w: the %s provider is not in this build of credhost yet", sdk.ErrNotFound, p.name)
}
func (p notBuiltProvider) Save(context.Context, sdk.Credential) error {
	return fmt.Errorf("%w: the %s provider is not in this build of credhost yet", sdk.ErrUnsupported, p.name)
}
func (p notBuiltProvider) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{}, fmt.Errorf("%w: the %s provider is not in this build of credhost yet", sdk.ErrUnsupported, p.name)
}
