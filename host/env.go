package host

import (
	"runtime"
	"strings"
)

// baseEnv are the variables every plugin process gets from the host, when
// set: what any program needs to find its tools, home, locale, time zone
// and temporary directory. Names ending in * are prefixes (LC_ALL,
// LC_CTYPE, ...; XDG_CONFIG_HOME, XDG_RUNTIME_DIR, ...).
var baseEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_*", "TZ", "TMPDIR", "XDG_*"}

// baseEnvWindows are what a Windows program needs besides: without
// SystemRoot, for one, a Go program cannot even seed its random numbers.
var baseEnvWindows = []string{
	"SystemRoot", "SystemDrive", "windir", "ComSpec", "PATHEXT", "TEMP", "TMP",
	"USERPROFILE", "USERNAME", "USERDOMAIN", "HOMEDRIVE", "HOMEPATH",
	"APPDATA", "LOCALAPPDATA", "ProgramData", "ProgramFiles", "ProgramFiles(x86)",
	"NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE",
}

// pluginEnv is a plugin process's environment, taken from environ (the
// host's): the base set and the variables named, nothing else. A plugin
// never sees a variable another provider reads (ANTHROPIC_AUTH_TOKEN, say)
// unless its config names it.
func pluginEnv(environ []string, named []string) []string {
	allow := append(append([]string{}, baseEnv...), named...)
	if runtime.GOOS == "windows" {
		allow = append(allow, baseEnvWindows...)
	}
	var out []string
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		for _, a := range allow {
			if envMatch(a, name) {
				out = append(out, kv)
				break
			}
		}
	}
	return out
}

// envMatch reports whether name is pattern (or starts with it, for a
// pattern ending in *); case-blind on Windows, as its environment is.
func envMatch(pattern, name string) bool {
	if runtime.GOOS == "windows" {
		pattern, name = strings.ToUpper(pattern), strings.ToUpper(name)
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pattern == name
}
