package host

import (
	"errors"
	"fmt"

	"github.com/credhost/credhost/sdk"
)

// ErrConfig is wrapped by every configuration error, so callers (the CLI's
// exit code 2) can branch on errors.Is(err, ErrConfig).
var ErrConfig = errors.New("invalid configuration")

// ConfigError is a configuration problem at a place in a config source.
type ConfigError struct {
	// Source is the file path, or "embedded default".
	Source string
	// Line and Column are 1-based; zero when the problem has no single place.
	Line, Column int
	// Key is the dotted path of the offending key, e.g. "refresh.buffer" or
	// "providers[2].plugin"; may be empty.
	Key string
	// Msg says what is wrong, quoting the offending value where it helps.
	Msg string
}

func (e *ConfigError) Error() string {
	where := e.Source
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d:%d", e.Source, e.Line, e.Column)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", where, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

// Unwrap makes errors.Is(err, ErrConfig) true.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// Config is a parsed, validated credhost configuration (format version 1).
// config.example.yaml documents every key.
type Config struct {
	// Version is the config format version; only 1 exists.
	Version int `yaml:"version"`
	// Refresh holds the expiry-buffer and refresh rules.
	Refresh RefreshConfig `yaml:"refresh"`
	// OAuth is the shared OAuth client, passed to every provider's Configure.
	OAuth OAuthConfig `yaml:"oauth"`
	// Plugins controls how provider plugins run.
	Plugins PluginsConfig `yaml:"plugins"`
	// Providers is the priority chain, in order.
	Providers []ProviderConfig `yaml:"providers"`

	// Source says where the config came from: a path or "embedded default".
	Source string `yaml:"-"`
	// Origin says why LoadConfig chose Source: one of the Origin constants
	// (empty for a config parsed by hand).
	Origin string `yaml:"-"`

	// unexpand turns values back into what the config file says, for
	// messages (see unexpander).
	unexpand unexpander
}

// RefreshConfig holds the refresh rules.
type RefreshConfig struct {
	// Buffer: a credential needs refresh when now+Buffer >= its expiry.
	Buffer Duration `yaml:"buffer"`
	// Timeout bounds one whole refresh (including the token request).
	Timeout Duration `yaml:"timeout"`
}

// OAuthConfig is the shared OAuth client configuration.
type OAuthConfig struct {
	TokenURL         string   `yaml:"token_url"`
	ClientID         string   `yaml:"client_id"`
	DefaultExpiresIn Duration `yaml:"default_expires_in"`
	// Body is "form" (RFC 6749, default) or "json".
	Body string `yaml:"body"`
	// Scopes are requested with every refresh.
	Scopes []string `yaml:"scopes"`
	// KeepScopes are stored scopes requested again, after Scopes, when the
	// credential holds them.
	KeepScopes []string `yaml:"keep_scopes"`
	// ClientIDMetadata names a credential metadata key whose non-empty
	// value is the client id for that credential, which is then refreshed
	// with its own stored scopes.
	ClientIDMetadata string `yaml:"client_id_metadata"`
}

// Builtin modes for PluginsConfig.Builtin.
const (
	// BuiltinInProcess runs built-in providers inside the credhost process.
	BuiltinInProcess = "in-process"
	// BuiltinProcess runs each built-in provider as a plugin subprocess of
	// the credhost binary, across the same boundary as third-party plugins.
	BuiltinProcess = "process"
)

// PluginsConfig controls how provider plugins run.
type PluginsConfig struct {
	// Builtin is BuiltinInProcess or BuiltinProcess.
	Builtin string `yaml:"builtin"`
	// StartTimeout bounds a plugin process's start and handshake.
	StartTimeout Duration `yaml:"start_timeout"`
	// CallTimeout bounds one Read, Save or Info call.
	CallTimeout Duration `yaml:"call_timeout"`
}

// ProviderConfig is one entry of the chain.
type ProviderConfig struct {
	// Name is unique in the chain; it names the provider in every message.
	Name string `yaml:"name"`
	// Plugin names a built-in provider (env, file, keychain, wincred).
	Plugin string `yaml:"plugin"`
	// Command is the path of an external plugin executable; exactly one of
	// Plugin and Command is set. After loading it is absolute: a leading ~
	// is the home directory, and a relative path is taken from the config
	// file's directory, never the working directory.
	Command string `yaml:"command"`
	// Args are passed to Command; with Script, before the script (they are
	// then the interpreter's options).
	Args []string `yaml:"args"`
	// SHA256, when set, pins Command's checksum (64 hex digits).
	SHA256 string `yaml:"sha256"`
	// Script, when set, is the script Command (an interpreter) runs. The
	// host opens it, checks ScriptSHA256 on the open file, and hands the
	// interpreter that file as /dev/fd/N after Args, never its path, so
	// what runs is what was hashed. Made absolute as Command is.
	Script string `yaml:"script"`
	// ScriptSHA256, when set, pins Script's checksum (64 hex digits).
	ScriptSHA256 string `yaml:"script_sha256"`
	// Modules, when set, is a directory of modules the script imports,
	// checked against ModulesSHA256 before each start and given to the
	// plugin as $CREDHOST_PLUGIN_MODULES. Made absolute as Command is.
	Modules string `yaml:"modules"`
	// ModulesSHA256 pins Modules by its tree hash: the sha256 of the
	// sha256sum lines of its files (config.example.yaml has the command).
	ModulesSHA256 string `yaml:"modules_sha256"`
	// Env names the host's environment variables this provider's plugin
	// process gets beyond the minimal set every plugin gets (PATH, HOME,
	// locale, ...): a plugin never sees a variable nobody named for it.
	Env []string `yaml:"env"`
	// Config is the provider's own block, sent to it as JSON.
	Config map[string]any `yaml:"config"`
	// RefreshWith names stores an env token refreshes through (borrow).
	// A name whose provider is left out on this OS (see OS) is skipped.
	RefreshWith []string `yaml:"refresh_with"`
	// OS, when set, lists the operating systems (Go's GOOS names: darwin,
	// linux, windows, ...) the entry applies to; elsewhere the loader leaves
	// it out of the chain. One config can so describe every OS, as the
	// embedded default does.
	OS []string `yaml:"os"`

	// Line and Column locate the entry in its source, for later errors.
	Line, Column int `yaml:"-"`
}

// Duration is a duration in the config: a Go duration string ("5m",
// "90s") or a whole number of seconds (300), never negative. It is
// sdk.Duration, so the host's keys and every provider's config block read
// durations the same way.
type Duration = sdk.Duration
