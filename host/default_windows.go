//go:build windows

package host

import _ "embed"

// defaultConfig is Claude Code's chain on Windows: enterprise token, OAuth
// token from the environment, Windows Credential Manager, credentials file.
//
//go:embed default_windows.yaml
var defaultConfig []byte
