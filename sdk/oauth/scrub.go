package oauth

import (
	"encoding/json"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// maxServerString caps a string from the server in a message: enough for
	// a real error_description, short enough that a hostile answer cannot
	// flood the log or the terminal.
	maxServerString = 200
	// scrubWindow is how much of a server string is looked at at all; the
	// rest is cut before anything else, so scrubbing costs little even on a
	// megabyte of error text.
	scrubWindow = 4 << 10
	// minSecretPart is the shortest run of a token's bytes that is redacted
	// when it appears without the rest of the token (a server that echoes
	// the request, cut short): shorter runs are common text, longer ones
	// are a piece of the token.
	minSecretPart = 12
	redacted      = "[redacted]"
)

// scrub makes a string that came from a token endpoint (an OAuth error or
// error_description, a content type, a Location's host) safe to put in an
// error or a log line: every secret in secrets (the tokens the request
// carried) is replaced by "[redacted]", whole, escaped as a form or JSON
// body would carry it, or as a run of at least 12 of its bytes; characters
// that are not printable become spaces, runs of space collapse; and the
// result is cut to 200 bytes. Every string from a server passes through it
// before it reaches a message.
func scrub(s string, secrets ...string) string {
	if len(s) > scrubWindow {
		s = s[:scrubWindow]
	}
	s = redact(s, secrets)
	// Control characters become spaces, never nothing, so they cannot be
	// used to split a token in two that the first pass misses and that
	// joins again once they are gone.
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = redact(s, secrets)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxServerString {
		cut := maxServerString
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// redact replaces each secret in s, in its plain, form-encoded and
// JSON-escaped spellings, then any long run of its bytes.
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		quoted, _ := json.Marshal(secret)
		for _, form := range []string{secret, url.QueryEscape(secret), string(quoted[1 : len(quoted)-1])} {
			s = strings.ReplaceAll(s, form, redacted)
		}
		if len(secret) >= minSecretPart {
			s = redactParts(s, secret)
		}
	}
	return s
}

// redactParts replaces every run of at least minSecretPart bytes of s that
// also occurs in secret.
func redactParts(s, secret string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if i+minSecretPart > len(s) || !strings.Contains(secret, s[i:i+minSecretPart]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + minSecretPart
		for j < len(s) && strings.Contains(secret, s[i:j+1]) {
			j++
		}
		b.WriteString(redacted)
		i = j
	}
	return b.String()
}
