package host

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"runtime"
	"slices"
	"strings"
)

// ChainID identifies what the chain reads: its resolved config (after
// ${VAR} expansion) and the value, or absence, of every environment
// variable the chain reads (the base set every plugin gets, each
// provider's `env:` names, and the variables each built-in reads given its
// config). Two processes with the same config and the same values of those
// variables get the same ID, and read the same token; a process whose
// environment sets a variable the chain reads to another value (an agent
// with its own ANTHROPIC_AUTH_TOKEN), or whose config says something else,
// gets another ID.
//
// `credhost serve` reports its ID and its clients send theirs (the daemon
// package's ChainHeader), so a caller whose chain differs from the daemon's
// works directly instead of being served another chain's token.
//
// Left out, as they change no token: where the config came from, line
// numbers, comments, how plugins run and their timeouts, the `os:` lists
// (the loader has applied them already), and the variables of the base set
// that change no token (PATH, the locale, the time zone, the temporary
// directory: see tokenNeutralEnv), so a daemon started by systemd or
// launchd, whose PATH is not the shell's, still serves the shell's
// commands.
//
// The ID is a SHA-256 over those values, hex-encoded. It reveals no secret
// as a token does: the values it covers that are secret (access tokens in
// the environment) are high-entropy, so the hash cannot be inverted, and
// the ID is only compared between processes of one user, over a socket
// only that user can reach. It is computed when called, from the
// environment as it is then.
func (h *Host) ChainID() string {
	sum := sha256.New()
	enc := json.NewEncoder(sum)
	// Encoding these cannot fail: New refuses a provider's config block
	// that JSON cannot encode (it is sent to the plugin as JSON), and the
	// rest are strings, numbers and bools.
	_ = enc.Encode(chainConfig(h.cfg))
	_ = enc.Encode(chainEnvValues(h.environ(), h.chainEnvNames()))
	return hex.EncodeToString(sum.Sum(nil))
}

// chainConfig is cfg with what changes no token left out (see ChainID).
func chainConfig(cfg *Config) Config {
	c := *cfg
	c.Source, c.Origin = "", ""
	c.Plugins = PluginsConfig{}
	c.Refresh.Timeout = 0
	c.Providers = make([]ProviderConfig, len(cfg.Providers))
	for i, pc := range cfg.Providers {
		pc.Line, pc.Column, pc.OS = 0, 0, nil
		c.Providers[i] = pc
	}
	return c
}

// tokenNeutralEnv are the variables of the base set that change no token:
// how programs are found, the locale, the time zone, the temporary
// directory, the shape of the machine. A systemd user service or a launchd
// agent sees other values of these than a login shell does; counting them
// would send every command past the daemon. A provider whose env: names
// one of them counts it again.
var tokenNeutralEnv = []string{
	"PATH", "TZ", "TMPDIR",
	"LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE",
	"LC_MONETARY", "LC_MESSAGES", "LC_PAPER", "LC_NAME", "LC_ADDRESS",
	"LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION",
	"PATHEXT", "ComSpec", "TEMP", "TMP", "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE",
}

// chainEnvNames are the variables the chain reads, sorted, each once
// (case-blind on Windows, as its environment is).
func (h *Host) chainEnvNames() []string {
	var names []string
	for _, n := range baseEnv {
		if !slices.Contains(tokenNeutralEnv, n) {
			names = append(names, n)
		}
	}
	if runtime.GOOS == "windows" {
		for _, n := range baseEnvWindows {
			if !slices.Contains(tokenNeutralEnv, n) {
				names = append(names, n)
			}
		}
	}
	names = append(names, h.chainEnv...)
	if runtime.GOOS == "windows" {
		for i, n := range names {
			names[i] = strings.ToUpper(n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// envValue is one variable the chain reads, as ChainID hashes it: a
// variable set to "" differs from an unset one.
type envValue struct {
	Name  string `json:"n"`
	Set   bool   `json:"s"`
	Value string `json:"v"`
}

// chainEnvValues looks each of names up in environ.
func chainEnvValues(environ, names []string) []envValue {
	out := make([]envValue, len(names))
	for i, name := range names {
		out[i].Name = name
		for _, kv := range environ {
			k, v, ok := strings.Cut(kv, "=")
			if ok && envMatch(name, k) {
				out[i].Set, out[i].Value = true, v
			}
		}
	}
	return out
}
