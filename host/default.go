package host

import _ "embed"

// defaultConfig is the embedded default: Claude Code's own chain on each
// operating system (enterprise token, OAuth token from the environment, the
// macOS Keychain on macOS only, the credentials file), one file whose
// per-OS entries carry os: lists.
//
//go:embed default.yaml
var defaultConfig []byte
