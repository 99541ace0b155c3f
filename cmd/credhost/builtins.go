package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/plugins/env"
	"github.com/credhost/credhost/plugins/file"
	"github.com/credhost/credhost/plugins/keychain"
	"github.com/credhost/credhost/plugins/wincred"
	"github.com/credhost/credhost/sdk"
)

// builtinProviders are the providers compiled into credhost, by plugin name.
var builtinProviders = map[string]func() sdk.Provider{
	"env":      func() sdk.Provider { return env.New() },
	"file":     func() sdk.Provider { return file.New() },
	"keychain": func() sdk.Provider { return keychain.New() },
	"wincred":  func() sdk.Provider { return wincred.New() },
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
