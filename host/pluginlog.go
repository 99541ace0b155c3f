package host

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
)

// maxPluginLogText caps a message or a value in a log line a plugin
// writes to its stderr: enough for a real log line, short enough that a
// plugin cannot flood the user's terminal.
const maxPluginLogText = 1 << 10

// pluginLogger is the logger go-plugin re-logs a plugin's stderr through.
// A plugin's message is written as the plugin sent it, unquoted, so it is
// made printable (a terminal escape, a newline forging a log line of the
// host's, become spaces) and cut; so is every string value.
type pluginLogger struct{ hclog.Logger }

func (l pluginLogger) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(level, logText(msg), logArgs(args)...)
}
func (l pluginLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l pluginLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l pluginLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l pluginLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l pluginLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l pluginLogger) With(args ...any) hclog.Logger {
	return pluginLogger{l.Logger.With(logArgs(args)...)}
}
func (l pluginLogger) Named(name string) hclog.Logger {
	return pluginLogger{l.Logger.Named(logText(name))}
}
func (l pluginLogger) ResetNamed(name string) hclog.Logger {
	return pluginLogger{l.Logger.ResetNamed(logText(name))}
}

// logArgs makes the string values (and keys) of args safe as logText does.
func logArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if s, ok := a.(string); ok {
			a = logText(s)
		}
		out[i] = a
	}
	return out
}

// logText turns characters that are not printable into spaces and cuts s
// to maxPluginLogText bytes.
func logText(s string) string {
	cut := len(s) > maxPluginLogText
	if cut {
		n := maxPluginLogText
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	if cut {
		s += "…"
	}
	return s
}
