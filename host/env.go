package host

import (
	"runtime"
	"strings"
)

// baseEnv are the variables every plugin process gets from the host, when
// set: what any program needs to find its tools, home, locale, time zone,
// temporary directory and XDG base directories. Each is named in full: a
// prefix (LC_*, XDG_*) would pass on whatever someone put behind it
// (an LC_ variable forwarded by ssh, an XDG_SESSION_ cookie).
var baseEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "TZ", "TMPDIR",
	"LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE",
	"LC_MONETARY", "LC_MESSAGES", "LC_PAPER", "LC_NAME", "LC_ADDRESS",
	"LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION",
	"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
	"XDG_RUNTIME_DIR", "XDG_CONFIG_DIRS", "XDG_DATA_DIRS",
}

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

// envMatch reports whether name is pattern; case-blind on Windows, as its
// environment is.
func envMatch(pattern, name string) bool {
	if runtime.GOOS == "windows" {
		return strings.EqualFold(pattern, name)
	}
	return pattern == name
}
