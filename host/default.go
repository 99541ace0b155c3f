package host

import (
	"bytes"
	_ "embed"
)

// defaultConfig is the embedded default: Claude Code's own chain on each
// operating system (enterprise token, OAuth token from the environment, the
// macOS Keychain on macOS only, the credentials file), one file whose
// per-OS entries carry os: lists.
//
//go:embed default.yaml
var defaultConfig []byte

// defaultConfigBody is defaultConfig with every comment line emptied: the
// same keys on the same lines and columns, so a config error points at the
// same place, without the comments yaml.v3 would scan and keep (most of the
// file) on every start that uses the default.
func defaultConfigBody() []byte {
	out := make([]byte, 0, len(defaultConfig))
	for rest := defaultConfig; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if t := bytes.TrimLeft(line, " \t"); len(t) > 0 && t[0] == '#' {
			if line[len(line)-1] == '\n' {
				out = append(out, '\n')
			}
			continue
		}
		out = append(out, line...)
	}
	return out
}
