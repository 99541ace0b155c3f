package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/oauth"
)

// Defaults applied when a key is absent. Each has its reason.
const (
	// defaultBuffer: refresh ten minutes ahead. Claude Code refreshes on its
	// own five minutes before expiry and caches an apiKeyHelper's answer for
	// five minutes; a longer buffer lets credhost refresh first, so the
	// client finds a fresh token and never sends an expired one.
	defaultBuffer = 10 * time.Minute
	// defaultRefreshTimeout bounds a whole refresh, token request included.
	defaultRefreshTimeout = 10 * time.Second
	// defaultStartTimeout bounds a plugin's start and handshake; go-plugin's
	// own default (a minute) is far too long for an agent waiting on a token.
	defaultStartTimeout = 10 * time.Second
	// defaultCallTimeout bounds one Read/Save/Info; a keychain prompt or a
	// hung plugin must not hold up the chain longer.
	defaultCallTimeout = 5 * time.Second
)

// DefaultConfig returns a Config holding every default, the one place the
// defaults live: ParseConfig decodes a file onto it, so a key the file
// leaves out keeps its default, and a program that builds its Config in Go
// starts from it and sets what it means to set.
//
// A constructor, rather than fields that record being set, because for some
// keys 0 is a value of its own: refresh.buffer 0 refreshes only once a
// token has expired, refresh.timeout 0 leaves a refresh bounded by the call
// timeout alone, and a zero call or start timeout is no bound. A Config's
// zero values therefore say exactly that; DefaultConfig is how a Config
// built in Go says "the default". New refuses a Config whose Version is
// not set (a literal that did not start here) and checks the rest as
// ParseConfig does:
//
//	cfg := host.DefaultConfig()           // buffer 10m, timeouts, body form, ...
//	cfg.Refresh.Buffer = 0                // explicit: refresh only when expired
//	cfg.Providers = []host.ProviderConfig{{Name: "file", Plugin: "file"}}
//	h, err := host.New(cfg, host.WithBuiltins(builtins))
func DefaultConfig() *Config {
	return &Config{
		Version: 1,
		Refresh: RefreshConfig{Buffer: Duration(defaultBuffer), Timeout: Duration(defaultRefreshTimeout)},
		OAuth:   OAuthConfig{Body: oauth.BodyForm},
		Plugins: PluginsConfig{Builtin: BuiltinInProcess, StartTimeout: Duration(defaultStartTimeout), CallTimeout: Duration(defaultCallTimeout)},
	}
}

// problem is what a shared check found: the key the message names, and
// where it points. The loader finds that place in the YAML; New in the
// provider entry's Line and Column.
type problem struct {
	// key is the dotted key the message names, e.g. "providers[2].name".
	key string
	// at is the dotted path of what the error points at, when that is not
	// key: its value, or the nearest enclosing entry that is set.
	at string
	// atKey points at the key of at in its mapping rather than its value.
	atKey bool
	msg   string
}

func (pr *problem) where() string {
	if pr.at != "" {
		return pr.at
	}
	return pr.key
}

// validator holds what the shared checks need from their caller.
type validator struct {
	// goos is the operating system os: entries are matched against.
	goos string
	// command checks a provider's command and returns it as the host runs
	// it (the loader resolves ~ and relative paths; New wants it absolute).
	command func(string) (string, error)
}

// The name checks are written out rather than compiled regular
// expressions: a package-level regexp is compiled in package init, on every
// credhost start, whatever the command.

// isProviderName reports whether s is a provider name: a letter or digit,
// then letters, digits, '_', '.' and '-' (^[A-Za-z0-9][A-Za-z0-9_.-]*$).
func isProviderName(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// isHex64 reports whether s is 64 hexadecimal digits, either case (a
// SHA-256 sum).
func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// isEnvName reports whether s is an environment variable name: a letter or
// '_', then letters, digits and '_' (^[A-Za-z_][A-Za-z0-9_]*$).
func isEnvName(s string) bool {
	if s == "" || s[0] != '_' && !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; c != '_' && !isAlnum(c) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isAlnum(c byte) bool { return isLetter(c) || '0' <= c && c <= '9' }

// validate is the one place the config's cross-field checks are made, for
// ParseConfig and New alike. It completes cfg in place: an empty body or
// builtin mode takes its default, a provider's command is what
// v.command returns, a pin is lower-cased, and the providers whose os:
// list leaves this system out are dropped. It reports the first problem.
func (cfg *Config) validate(v validator) *problem {
	if cfg.Version != 1 {
		return &problem{key: "version", msg: fmt.Sprintf("%d is not supported; want 1", cfg.Version)}
	}
	for _, d := range []struct {
		key string
		d   Duration
	}{
		{"refresh.buffer", cfg.Refresh.Buffer},
		{"refresh.timeout", cfg.Refresh.Timeout},
		{"oauth.default_expires_in", cfg.OAuth.DefaultExpiresIn},
		{"plugins.start_timeout", cfg.Plugins.StartTimeout},
		{"plugins.call_timeout", cfg.Plugins.CallTimeout},
	} {
		if d.d < 0 {
			// Only a Config built in Go: the YAML's durations are checked
			// as they are read.
			return &problem{key: d.key, msg: fmt.Sprintf("%q is negative; want a duration >= 0", d.d.Std().String())}
		}
	}
	if err := oauth.CheckConfig(sdk.OAuthConfig{TokenURL: cfg.OAuth.TokenURL, BodyFormat: cfg.OAuth.Body}); err != nil {
		var ce *oauth.ConfigError
		if errors.As(err, &ce) {
			// https, or http to loopback only: the refresh token and the
			// new credential cross this connection.
			return &problem{key: "oauth." + ce.Key, msg: ce.Err.Error()}
		}
		return &problem{key: "oauth", msg: err.Error()}
	}
	if cfg.OAuth.Body == "" {
		cfg.OAuth.Body = oauth.BodyForm
	}
	switch cfg.Plugins.Builtin {
	case "":
		cfg.Plugins.Builtin = BuiltinInProcess
	case BuiltinInProcess, BuiltinProcess:
	default:
		return &problem{key: "plugins.builtin", msg: fmt.Sprintf("%q: want %s or %s", cfg.Plugins.Builtin, BuiltinInProcess, BuiltinProcess)}
	}

	if len(cfg.Providers) == 0 {
		return &problem{key: "providers", atKey: true, msg: "missing or empty; want at least one provider"}
	}
	names := map[string]int{}
	for i := range cfg.Providers {
		pc := &cfg.Providers[i]
		path := "providers[" + strconv.Itoa(i) + "]"
		switch {
		case pc.Name == "":
			return &problem{key: path + ".name", at: path, msg: "missing; every provider needs a unique name"}
		case !isProviderName(pc.Name):
			return &problem{key: path + ".name", msg: fmt.Sprintf("%q: use letters, digits, '.', '_' and '-', starting with a letter or digit", pc.Name)}
		}
		if first, dup := names[pc.Name]; dup {
			return &problem{key: path + ".name", msg: fmt.Sprintf("%q is also the name of providers[%d] (line %d)", pc.Name, first, cfg.Providers[first].Line)}
		}
		names[pc.Name] = i
		switch {
		case pc.Plugin == "" && pc.Command == "":
			return &problem{key: path, msg: "want plugin (a built-in) or command (an external plugin)"}
		case pc.Plugin != "" && pc.Command != "":
			return &problem{key: path, at: path + ".command", msg: "plugin and command are both set; want one"}
		}
		if pc.Command != "" {
			cmd, err := v.command(pc.Command)
			if err != nil {
				return &problem{key: path + ".command", msg: err.Error()}
			}
			pc.Command = cmd
		}
		for j, name := range pc.Env {
			if !isEnvName(name) {
				return &problem{key: fmt.Sprintf("%s.env[%d]", path, j), msg: fmt.Sprintf("%q is not an environment variable name", name)}
			}
		}
		if pc.Command == "" && len(pc.Args) > 0 {
			return &problem{key: path + ".args", msg: "args go with command, not with a built-in plugin"}
		}
		if pr := checkInterpreted(pc, path, v); pr != nil {
			return pr
		}
		if pc.SHA256 != "" {
			if pc.Command == "" {
				return &problem{key: path + ".sha256", msg: "sha256 pins an external command; built-ins are part of credhost"}
			}
			if !isHex64(pc.SHA256) {
				return &problem{key: path + ".sha256", msg: "want 64 hex digits (sha256sum of the executable)"}
			}
			pc.SHA256 = strings.ToLower(pc.SHA256)
		}
		for j, goos := range pc.OS {
			if !knownOS[goos] {
				return &problem{key: fmt.Sprintf("%s.os[%d]", path, j), msg: fmt.Sprintf("%q is not an operating system; want Go's names: %s", goos, strings.Join(slices.Sorted(maps.Keys(knownOS)), ", "))}
			}
		}
		if pc.OS != nil && len(pc.OS) == 0 {
			return &problem{key: path + ".os", msg: "empty list; leave os out to mean every operating system"}
		}
		if pc.Config != nil {
			if _, err := json.Marshal(pc.Config); err != nil {
				return &problem{key: path + ".config", msg: "cannot be sent to the plugin as JSON: " + err.Error()}
			}
		}
	}
	for i, pc := range cfg.Providers {
		for j, name := range pc.RefreshWith {
			key := fmt.Sprintf("providers[%d].refresh_with[%d]", i, j)
			switch idx, ok := names[name]; {
			case !ok:
				return &problem{key: key, msg: fmt.Sprintf("no provider named %q", name)}
			case idx == i:
				return &problem{key: key, msg: "a provider cannot refresh through itself"}
			}
		}
	}
	if err := dropOtherOS(cfg, v.goos); err != nil {
		return &problem{key: "providers", atKey: true, msg: err.Error()}
	}
	return nil
}

// checkInterpreted checks and completes the keys of an interpreted
// plugin's entry: script and modules go with command (the interpreter), a
// pin with what it pins, modules always with its tree hash; paths are made
// absolute as command is, pins lower-cased.
func checkInterpreted(pc *ProviderConfig, path string, v validator) *problem {
	for _, k := range []struct {
		key       string
		val, with *string
		withKey   string
	}{
		{"script", &pc.Script, &pc.Command, "command"},
		{"modules", &pc.Modules, &pc.Command, "command"},
		{"script_sha256", &pc.ScriptSHA256, &pc.Script, "script"},
		{"modules_sha256", &pc.ModulesSHA256, &pc.Modules, "modules"},
		{"modules", &pc.Modules, &pc.ModulesSHA256, "modules_sha256"},
	} {
		if *k.val != "" && *k.with == "" {
			msg := fmt.Sprintf("%s goes with %s, which is not set", k.key, k.withKey)
			switch k.withKey {
			case "command":
				msg = k.key + " goes with command (the interpreter that runs the script), not with a built-in plugin"
			case "modules_sha256":
				msg = "a module directory is checked by its tree hash: set modules_sha256 (config.example.yaml shows how to compute it)"
			}
			return &problem{key: path + "." + k.key, msg: msg}
		}
	}
	for _, p := range []*string{&pc.Script, &pc.Modules} {
		if *p == "" {
			continue
		}
		abs, err := v.command(*p)
		if err != nil {
			key := "script"
			if p == &pc.Modules {
				key = "modules"
			}
			return &problem{key: path + "." + key, msg: err.Error()}
		}
		*p = abs
	}
	for _, pin := range []struct {
		key string
		sum *string
	}{{"script_sha256", &pc.ScriptSHA256}, {"modules_sha256", &pc.ModulesSHA256}} {
		if *pin.sum == "" {
			continue
		}
		if !isHex64(*pin.sum) {
			return &problem{key: path + "." + pin.key, msg: "want 64 hex digits"}
		}
		*pin.sum = strings.ToLower(*pin.sum)
	}
	return nil
}

// check is New's use of validate: a Config built in Go, or one ParseConfig
// returned (which passes unchanged), checked and completed in place.
func (cfg *Config) check() error {
	if cfg.Version == 0 {
		return &ConfigError{Source: cfg.Source, Key: "version", Msg: "not set; start from DefaultConfig, which sets it and every default"}
	}
	pr := cfg.validate(validator{goos: runtime.GOOS, command: absoluteCommand})
	if pr == nil {
		return nil
	}
	e := &ConfigError{Source: cfg.Source, Key: pr.key, Msg: cfg.unexpand.apply(pr.msg)}
	if rest, ok := strings.CutPrefix(pr.where(), "providers["); ok {
		if i, err := strconv.Atoi(rest[:strings.IndexByte(rest, ']')]); err == nil && i < len(cfg.Providers) {
			e.Line, e.Column = cfg.Providers[i].Line, cfg.Providers[i].Column
		}
	}
	return e
}

// absoluteCommand is New's check of a provider's command: a Config built
// in Go has no file to resolve a relative path against.
func absoluteCommand(cmd string) (string, error) {
	if !filepath.IsAbs(cmd) {
		return "", fmt.Errorf("%q is not an absolute path", cmd)
	}
	return cmd, nil
}

// knownOS are the GOOS values an os: list may name.
var knownOS = map[string]bool{
	"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true,
	"illumos": true, "ios": true, "linux": true, "netbsd": true, "openbsd": true,
	"plan9": true, "solaris": true, "windows": true,
}

// dropOtherOS leaves out the providers whose os: list does not name goos,
// and their names from every refresh_with. The whole config was checked
// first, so a config that loads on one OS loads on all.
func dropOtherOS(cfg *Config, goos string) error {
	other := func(pc ProviderConfig) bool { return len(pc.OS) > 0 && !slices.Contains(pc.OS, goos) }
	kept := cfg.Without(other).Providers
	if len(kept) == len(cfg.Providers) {
		return nil
	}
	if len(kept) == 0 {
		return fmt.Errorf("every provider is limited by os: to other systems; none applies to %s", goos)
	}
	cfg.Providers = kept
	return nil
}

// Without returns a copy of c with the providers drop matches left out,
// and their names taken out of every remaining refresh_with, so the copy
// names no provider it lacks. c itself is not changed.
func (c *Config) Without(drop func(ProviderConfig) bool) *Config {
	out := *c
	out.Providers = nil
	gone := map[string]bool{}
	for _, pc := range c.Providers {
		if drop(pc) {
			gone[pc.Name] = true
			continue
		}
		out.Providers = append(out.Providers, pc)
	}
	for i, pc := range out.Providers {
		if pc.RefreshWith != nil {
			out.Providers[i].RefreshWith = slices.DeleteFunc(slices.Clone(pc.RefreshWith), func(name string) bool { return gone[name] })
		}
	}
	return &out
}
