//go:build !windows

package host

import _ "embed"

// defaultConfig is Claude Code's chain: enterprise token, OAuth token from
// the environment, keychain, credentials file.
//
//go:embed default.yaml
var defaultConfig []byte
