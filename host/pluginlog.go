package host

import (
	"github.com/hashicorp/go-hclog"

	sdkplugin "github.com/credhost/credhost/sdk/plugin"
)

// pluginLogger is the logger go-plugin re-logs a plugin's stderr through.
// A plugin's message is written as the plugin sent it, unquoted, so it is
// made printable (a terminal escape, a newline forging a log line of the
// host's, become spaces) and cut; so is every string value.
type pluginLogger struct{ hclog.Logger }

func (l pluginLogger) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(level, sdkplugin.Text(msg), logArgs(args)...)
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
	return pluginLogger{l.Logger.Named(sdkplugin.Text(name))}
}
func (l pluginLogger) ResetNamed(name string) hclog.Logger {
	return pluginLogger{l.Logger.ResetNamed(sdkplugin.Text(name))}
}

// logArgs makes the string values (and keys) of args safe as sdkplugin.Text does.
func logArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if s, ok := a.(string); ok {
			a = sdkplugin.Text(s)
		}
		out[i] = a
	}
	return out
}
