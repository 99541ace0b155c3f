package host

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	sdkplugin "github.com/credhost/credhost/sdk/plugin"
)

// pluginLogger is the logger go-plugin logs its own lines through, and the
// host a plugin's stderr (see relayStderr). A plugin's message is written
// as the plugin sent it, unquoted, so it passes the host's filter for
// plugin strings first (expanded config values back to ${VAR}, then
// sdkplugin.Text: a terminal escape, a newline forging a log line of the
// host's, become spaces; cut); so does every string value.
//
// go-plugin's "stdio" logger reports on an optional service (a Go
// plugin's os.Stdout and os.Stderr sent over gRPC; what comes over it is
// relayed as stderr lines): its own lines go to debug, so a plugin that
// does not serve it (any plugin not written with go-plugin) is not warned
// about at every start.
type pluginLogger struct {
	hclog.Logger
	// filter rewrites a plugin's string before sdkplugin.Text (nil: none).
	filter func(string) string
	// settled, once the plugin is dispensed, says when no call whose
	// answer may carry a token is in flight (sdkplugin.Settled): a stderr
	// line is filtered only then, so the filter knows the tokens the
	// plugin logged just before it answered. nil: never wait.
	settled *atomic.Pointer[func() <-chan struct{}]
	quiet   bool // every line at debug at most
}

func (l pluginLogger) Log(level hclog.Level, msg string, args ...any) {
	if l.quiet && level > hclog.Debug {
		level = hclog.Debug
	}
	l.Logger.Log(level, l.text(msg), l.logArgs(args)...)
}
func (l pluginLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l pluginLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l pluginLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l pluginLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l pluginLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l pluginLogger) With(args ...any) hclog.Logger {
	l.Logger = l.Logger.With(l.logArgs(args)...)
	return l
}
func (l pluginLogger) Named(name string) hclog.Logger {
	if name == "stdio" {
		l.quiet = true
	}
	l.Logger = l.Logger.Named(l.text(name))
	return l
}
func (l pluginLogger) ResetNamed(name string) hclog.Logger {
	l.Logger = l.Logger.ResetNamed(l.text(name))
	return l
}

// text is the host's one filter for a string a plugin sent.
func (l pluginLogger) text(s string) string {
	if l.filter != nil {
		s = l.filter(s)
	}
	return sdkplugin.Text(s)
}

// logArgs makes the values (and keys) of args safe as text does; a value
// that is neither a string, a number nor a boolean (a JSON object in a
// plugin's log line) is written as JSON first.
func (l pluginLogger) logArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			a = l.text(v)
		case error:
			a = l.text(v.Error())
		case nil, bool, int, int64, float64:
		default:
			if raw, err := json.Marshal(v); err == nil {
				a = l.text(string(raw))
			} else {
				a = "(unprintable)"
			}
		}
		out[i] = a
	}
	return out
}

// maxStderrLine is the longest stderr line read as one; the rest of a
// longer line is dropped (a log line is cut to 1 KiB anyway).
const maxStderrLine = 64 << 10

// maxMessageLines caps the lines one message of a plugin is written as.
const maxMessageLines = 100

// stderrTail keeps the last line a plugin wrote on stderr, filtered, for
// the error that says why it failed to start (a Python traceback ends with
// the exception).
type stderrTail struct {
	mu   sync.Mutex
	last string
}

func (t *stderrTail) set(s string) {
	if s = strings.TrimSpace(s); s != "" {
		t.mu.Lock()
		t.last = s
		t.mu.Unlock()
	}
}

// String returns the last line, "" when there was none.
func (t *stderrTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// maxHeldStderr bounds the bytes of stderr lines waiting to be logged
// (behind a call in flight, see pluginLogger.settled, or a slow log
// writer); a plugin writing faster loses lines, counted in a warning,
// rather than the host's memory.
const maxHeldStderr = 1 << 20

// relayStderr logs every line a plugin writes on stderr through logger
// (a pluginLogger: filtered) until r ends. A line in hclog's JSON format
// is logged at its @level with its other keys; any other line at warn,
// unless it starts with [TRACE], [DEBUG], [INFO], [WARN] or [ERROR], so a
// plugin that prints a traceback or a plain message is heard at the
// default level. A message of several lines is logged line by line, each
// under the provider's name. A line read while a call that may answer
// with a token is in flight waits for the answer before it is filtered.
// It returns once every line read has been logged (or dropped).
func relayStderr(r io.Reader, logger hclog.Logger, tail *stderrTail) {
	q := &lineQueue{ready: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.drain(logger, tail)
	}()
	defer func() { q.close(); <-done }()
	br := bufio.NewReaderSize(r, maxStderrLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Keep the first part; skip to the end of the line.
			q.push(string(line))
			line = nil
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				err = nil
			}
		}
		if len(line) > 0 {
			q.push(string(line))
		}
		if err != nil {
			return
		}
	}
}

// lineQueue holds the stderr lines read and not yet logged, up to
// maxHeldStderr bytes.
type lineQueue struct {
	mu      sync.Mutex
	lines   []string
	size    int
	dropped int
	closed  bool
	ready   chan struct{} // a token when there is something to do
}

func (q *lineQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *lineQueue) push(line string) {
	q.mu.Lock()
	if q.size+len(line) > maxHeldStderr {
		q.dropped++
	} else {
		q.lines = append(q.lines, line)
		q.size += len(line)
	}
	q.mu.Unlock()
	q.signal()
}

func (q *lineQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// drain logs the lines as they come, each once no call that may answer
// with a token is in flight, until the queue is closed and empty.
func (q *lineQueue) drain(logger hclog.Logger, tail *stderrTail) {
	var settled func() <-chan struct{}
	pl, isPlugin := logger.(pluginLogger)
	for {
		<-q.ready
		for {
			q.mu.Lock()
			lines, dropped, closed := q.lines, q.dropped, q.closed
			q.lines, q.dropped = nil, 0 // their bytes count until logged
			q.mu.Unlock()
			if len(lines) == 0 && dropped == 0 {
				if closed {
					return
				}
				break
			}
			for _, line := range lines {
				if settled == nil && isPlugin && pl.settled != nil {
					if f := pl.settled.Load(); f != nil {
						settled = *f
					}
				}
				if settled != nil {
					<-settled()
				}
				logStderrLine(logger, line, tail)
				q.mu.Lock()
				q.size -= len(line)
				q.mu.Unlock()
			}
			if dropped > 0 {
				logger.Warn("the plugin wrote more on stderr than could be held; lines dropped", "lines", dropped)
			}
		}
	}
}

// logStderrLine logs one line of a plugin's stderr.
func logStderrLine(logger hclog.Logger, line string, tail *stderrTail) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return
	}
	level, msg, args := parseStderrLine(line)
	lines := strings.Split(strings.TrimRight(msg, "\r\n"), "\n")
	if len(lines) > maxMessageLines {
		lines = append(lines[:maxMessageLines], "(more lines not shown)")
	}
	for i, l := range lines {
		l = strings.TrimRight(l, "\r")
		if i > 0 {
			args = nil // the keys go with the first line
			if strings.TrimSpace(l) == "" {
				continue
			}
		}
		logger.Log(level, l, args...)
	}
	if pl, ok := logger.(pluginLogger); ok {
		tail.set(pl.text(lines[len(lines)-1]))
	} else {
		tail.set(sdkplugin.Text(lines[len(lines)-1]))
	}
}

// parseStderrLine reads one line of a plugin's stderr: hclog's JSON (an
// object with a string "@message"; "@level" one of trace, debug, info,
// warn or warning, error; other keys are logged as they are, "@timestamp"
// is left out: the host's line has its own), or plain text.
func parseStderrLine(line string) (hclog.Level, string, []any) {
	if strings.HasPrefix(strings.TrimSpace(line), "{") {
		var obj map[string]any
		if json.Unmarshal([]byte(line), &obj) == nil {
			if msg, ok := obj["@message"].(string); ok {
				level := hclog.Warn
				if s, ok := obj["@level"].(string); ok {
					if l := levelFromName(s); l != hclog.NoLevel {
						level = l
					}
				}
				var args []any
				for _, k := range slices.Sorted(maps.Keys(obj)) {
					if k == "@message" || k == "@level" || k == "@timestamp" {
						continue
					}
					args = append(args, k, obj[k])
				}
				return level, msg, args
			}
		}
	}
	for _, p := range []struct {
		prefix string
		level  hclog.Level
	}{{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info}, {"[WARN]", hclog.Warn}, {"[ERROR]", hclog.Error}} {
		if rest, ok := strings.CutPrefix(line, p.prefix); ok {
			return p.level, strings.TrimSpace(rest), nil
		}
	}
	return hclog.Warn, line, nil
}

// levelFromName is hclog's level names, and the names other languages'
// loggers use for the same levels (Python's WARNING and CRITICAL).
func levelFromName(s string) hclog.Level {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "warning":
		return hclog.Warn
	case "critical", "fatal":
		return hclog.Error
	case "off":
		return hclog.NoLevel
	}
	return hclog.LevelFromString(s)
}
