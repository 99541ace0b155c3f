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

// claudeLogin is what a store with no credential tells the user: credhost
// serves Claude Code's login, which the stores' plugins know nothing of.
const claudeLogin = "log in again (for Claude Code: run `claude`, then /login) so a token is stored"

// builtinProviders are the providers compiled into credhost, by plugin name.
var builtinProviders = map[string]func() sdk.Provider{
	"env":      func() sdk.Provider { return env.New() },
	"file":     func() sdk.Provider { return file.New(file.WithLoginHint(claudeLogin)) },
	"keychain": func() sdk.Provider { return keychain.New(keychain.WithLoginHint(claudeLogin)) },
	"wincred":  func() sdk.Provider { return wincred.New(wincred.WithLoginHint(claudeLogin)) },
}

// refreshEnv are the variables a store that refreshes reads through
// net/http: a proxy, and where to find CA certificates.
var refreshEnv = []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// builtinEnv says which variables each built-in reads, given its config,
// beyond the base set every plugin process gets: run as a process, it gets
// exactly these from credhost's environment.
var builtinEnv = map[string]func(config map[string]any) []string{
	// env reads the variables its config names.
	"env": func(config map[string]any) []string {
		var names []string
		token, expires := env.ConfigVars(config)
		for _, v := range []string{token, expires} {
			if v != "" {
				names = append(names, v)
			}
		}
		return names
	},
	// file reads $CLAUDE_CONFIG_DIR when its path is not set.
	"file": func(map[string]any) []string { return append([]string{"CLAUDE_CONFIG_DIR"}, refreshEnv...) },
	// keychain reaches the Secret Service over the session bus (go-keyring,
	// godbus), and its account defaults to the user's name.
	"keychain": func(map[string]any) []string {
		return append([]string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "DISPLAY", "USERNAME"}, refreshEnv...)
	},
	// wincred needs nothing beyond the base set but the refresh's.
	"wincred": func(map[string]any) []string { return refreshEnv },
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
			Env:     builtinEnv[name],
		}
	}
	return out, nil
}
