package plugin

import (
	"slices"
	"strings"
	"sync"

	"github.com/credhost/credhost/sdk"
)

const (
	// minKnownToken is the shortest token a client remembers: a shorter
	// one would match ordinary words in a message.
	minKnownToken = 8
	// maxKnownTokens bounds how many tokens a client remembers; the
	// oldest go first. A connection sees a handful.
	maxKnownTokens = 32
	// minTokenPart is the shortest run of a known token's bytes removed
	// when it appears without the rest (a plugin that prints half).
	minTokenPart = 12
	// scrubWindow is how much of a string is looked at at all: it is cut
	// to maxPluginText afterwards anyway.
	scrubWindow = 4 << 10
	redacted    = "[redacted]"
)

// knownTokens remembers the tokens that crossed one plugin connection (read,
// saved, refreshed), so that no string the plugin sends back (an error, a
// finding, a log line) can show one.
type knownTokens struct {
	mu     sync.Mutex
	tokens []string
}

// add remembers c's tokens.
func (k *knownTokens) add(c sdk.Credential) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, t := range []string{c.AccessToken, c.RefreshToken} {
		if len(t) < minKnownToken {
			continue
		}
		if i := indexOf(k.tokens, t); i >= 0 {
			k.tokens = append(k.tokens[:i], k.tokens[i+1:]...)
		}
		k.tokens = append(k.tokens, t)
		if len(k.tokens) > maxKnownTokens {
			k.tokens = k.tokens[1:]
		}
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// scrub returns s with every known token, and every run of at least
// minTokenPart of a known token's bytes, replaced by [redacted].
func (k *knownTokens) scrub(s string) string {
	if len(s) > scrubWindow {
		s = s[:scrubWindow]
	}
	k.mu.Lock()
	tokens := append([]string(nil), k.tokens...)
	k.mu.Unlock()
	// Whole tokens first, longest first: a part shared by two tokens
	// (a common prefix) must not break one up before it is found whole.
	slices.SortFunc(tokens, func(a, b string) int { return len(b) - len(a) })
	for _, t := range tokens {
		s = strings.ReplaceAll(s, t, redacted)
	}
	for _, t := range tokens {
		s = redactParts(s, t)
	}
	return s
}

// redactParts replaces, left to right, the longest runs of at least
// minTokenPart bytes of s that also occur in token.
func redactParts(s, token string) string {
	var b strings.Builder
	last := 0
	for i := 0; i+minTokenPart <= len(s); {
		if !strings.Contains(token, s[i:i+minTokenPart]) {
			i++
			continue
		}
		j := i + minTokenPart
		for j < len(s) && strings.Contains(token, s[i:j+1]) {
			j++
		}
		b.WriteString(s[last:i])
		b.WriteString(redacted)
		last, i = j, j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// text is the filter for every string from the plugin: known tokens
// removed, then Text.
func (k *knownTokens) text(s string) string { return Text(k.scrub(s)) }

// Filter returns the filter every string from p's plugin passes (see
// Text), when p was dispensed by Dispense: the tokens that have crossed its
// connection so far, whole or in part, are replaced by [redacted] first. A
// host runs the plugin's log lines through it. For any other p it is Text.
func Filter(p sdk.Provider) func(string) string {
	if c, ok := p.(*grpcClient); ok {
		return c.known.text
	}
	return Text
}

// tokenCalls counts the calls in flight whose answer may carry a token
// not yet known to the filter. A plugin that logs the token it is about
// to return writes that line before its answer arrives, so a line read
// meanwhile must wait for the answer (and its tokens) before it is
// filtered. The zero value has no call in flight.
type tokenCalls struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

func (t *tokenCalls) enter() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
}

// leave is deferred by the call, so it runs after the answer's tokens
// were added to the filter.
func (t *tokenCalls) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 {
		close(t.idle)
		t.idle = nil
	}
}

// settled returns a channel closed once no such call is in flight.
func (t *tokenCalls) settled() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		return closed
	}
	return t.idle
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Settled returns, for a p dispensed by Dispense, a function whose channel
// is closed once no call of p's that may answer with a token (Read,
// Refresh) is in flight, that is once every token the plugin has returned
// so far is known to Filter(p). A host waits on it before it filters a
// line the plugin wrote on stderr: a plugin that logs the token it is
// about to return writes that line before its answer arrives. The wait
// ends with the call, which its deadline bounds. For any other p the
// channel is always closed.
func Settled(p sdk.Provider) func() <-chan struct{} {
	if c, ok := p.(*grpcClient); ok {
		return c.answers.settled
	}
	return func() <-chan struct{} { return closed }
}
