package host

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
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
	// The bytes hashed are what encoding/json's Encoder writes for the
	// config (chainConfig) and then the variables (chainEnvValues), each
	// with its newline, as earlier versions hashed them, so daemons and
	// clients of either agree. They are written by hand (appendChainJSON):
	// encoding/json would first build its encoders for every config type
	// by reflection, most of what a one-shot client spends before asking
	// the daemon. A test holds the two byte for byte.
	b := make([]byte, 0, 2048)
	env := chainEnvValues(h.environ(), h.chainEnvNames())
	b = appendChainJSON(b, h.cfg, env)
	// JSON writes every byte that is not UTF-8 as U+FFFD: values that
	// differ only there would share an ID, and one process be served the
	// other's token. Their raw bytes follow (only such hosts get an ID
	// earlier versions did not, and are served directly by their daemons).
	for _, v := range env {
		if !utf8.ValidString(v.Value) {
			b = append(b, "raw "...)
			b = appendJSONString(b, v.Name)
			b = append(b, ' ')
			b = hex.AppendEncode(b, []byte(v.Value))
			b = append(b, '\n')
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// appendChainJSON appends what ChainID hashes: the JSON of
// chainConfig(cfg) and of env, each as encoding/json's Encoder writes it
// (HTML-escaped, then a newline). Encoding the config cannot fail: New
// refuses a provider's config block that JSON cannot encode (it is sent to
// the plugin as JSON), and the rest are strings, numbers and bools; were
// it to fail, it is left out, as the Encoder leaves out what it cannot
// encode.
func appendChainJSON(b []byte, cfg *Config, env []envValue) []byte {
	if c, err := appendConfigJSON(b, cfg); err == nil {
		b = append(c, '\n')
	}
	if env == nil {
		return append(b, "null\n"...)
	}
	b = append(b, '[')
	for i, v := range env {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"n":`...)
		b = appendJSONString(b, v.Name)
		b = append(b, `,"s":`...)
		b = strconv.AppendBool(b, v.Set)
		b = append(b, `,"v":`...)
		b = appendJSONString(b, v.Value)
		b = append(b, '}')
	}
	return append(b, "]\n"...)
}

// appendConfigJSON appends the JSON encoding/json writes for
// chainConfig(cfg): every exported field in order, under its Go name
// (Config has no json tags), durations as their nanoseconds.
func appendConfigJSON(b []byte, cfg *Config) ([]byte, error) {
	c := chainConfig(cfg)
	b = append(b, `{"Version":`...)
	b = strconv.AppendInt(b, int64(c.Version), 10)
	b = append(b, `,"Refresh":{"Buffer":`...)
	b = strconv.AppendInt(b, int64(c.Refresh.Buffer), 10)
	b = append(b, `,"Timeout":`...)
	b = strconv.AppendInt(b, int64(c.Refresh.Timeout), 10)
	b = append(b, `},"OAuth":{"TokenURL":`...)
	b = appendJSONString(b, c.OAuth.TokenURL)
	b = append(b, `,"ClientID":`...)
	b = appendJSONString(b, c.OAuth.ClientID)
	b = append(b, `,"DefaultExpiresIn":`...)
	b = strconv.AppendInt(b, int64(c.OAuth.DefaultExpiresIn), 10)
	b = append(b, `,"Body":`...)
	b = appendJSONString(b, c.OAuth.Body)
	b = append(b, `,"Scopes":`...)
	b = appendJSONStrings(b, c.OAuth.Scopes)
	b = append(b, `,"KeepScopes":`...)
	b = appendJSONStrings(b, c.OAuth.KeepScopes)
	b = append(b, `,"ClientIDMetadata":`...)
	b = appendJSONString(b, c.OAuth.ClientIDMetadata)
	b = append(b, `},"Plugins":{"Builtin":`...)
	b = appendJSONString(b, c.Plugins.Builtin)
	b = append(b, `,"StartTimeout":`...)
	b = strconv.AppendInt(b, int64(c.Plugins.StartTimeout), 10)
	b = append(b, `,"CallTimeout":`...)
	b = strconv.AppendInt(b, int64(c.Plugins.CallTimeout), 10)
	b = append(b, `},"Providers":`...)
	if c.Providers == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range c.Providers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Name":`...)
			b = appendJSONString(b, p.Name)
			b = append(b, `,"Plugin":`...)
			b = appendJSONString(b, p.Plugin)
			b = append(b, `,"Command":`...)
			b = appendJSONString(b, p.Command)
			b = append(b, `,"Args":`...)
			b = appendJSONStrings(b, p.Args)
			b = append(b, `,"SHA256":`...)
			b = appendJSONString(b, p.SHA256)
			b = append(b, `,"Script":`...)
			b = appendJSONString(b, p.Script)
			b = append(b, `,"ScriptSHA256":`...)
			b = appendJSONString(b, p.ScriptSHA256)
			b = append(b, `,"Modules":`...)
			b = appendJSONString(b, p.Modules)
			b = append(b, `,"ModulesSHA256":`...)
			b = appendJSONString(b, p.ModulesSHA256)
			b = append(b, `,"Env":`...)
			b = appendJSONStrings(b, p.Env)
			b = append(b, `,"Config":`...)
			var err error
			if b, err = appendJSONValue(b, p.Config); err != nil {
				return nil, err
			}
			b = append(b, `,"RefreshWith":`...)
			b = appendJSONStrings(b, p.RefreshWith)
			b = append(b, `,"OS":`...)
			b = appendJSONStrings(b, p.OS)
			b = append(b, `,"Line":`...)
			b = strconv.AppendInt(b, int64(p.Line), 10)
			b = append(b, `,"Column":`...)
			b = strconv.AppendInt(b, int64(p.Column), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"Source":`...)
	b = appendJSONString(b, c.Source)
	b = append(b, `,"Origin":`...)
	b = appendJSONString(b, c.Origin)
	return append(b, '}'), nil
}

// appendJSONStrings appends ss as encoding/json does: null when nil.
func appendJSONStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONValue appends v, a value of a provider's config block, as
// encoding/json does: maps with their keys sorted, nil maps and slices as
// null. The kinds a config block holds (strings, bools, ints, maps and
// lists of them) are written here; any other (a float) by encoding/json
// itself.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			if b, err = appendJSONValue(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSONValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}

// appendJSONString appends s quoted as encoding/json quotes it by default:
// ", \\ and control characters escaped (\b \f \n \r \t short), <, > and
// & as \u003c \u003e \u0026, U+2028 and U+2029 escaped, and each byte
// of invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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

// chainEnvValues looks each of names (sorted, as chainEnvNames gives
// them) up in environ; the last of a name's entries counts.
func chainEnvValues(environ, names []string) []envValue {
	out := make([]envValue, len(names))
	for i, name := range names {
		out[i].Name = name
	}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if runtime.GOOS == "windows" {
			// Names are matched case-blind there (envMatch).
			for i, name := range names {
				if envMatch(name, k) {
					out[i].Set, out[i].Value = true, v
				}
			}
			continue
		}
		if i, found := slices.BinarySearch(names, k); found {
			out[i].Set, out[i].Value = true, v
		}
	}
	return out
}
