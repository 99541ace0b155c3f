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
	s = printable(window(s))
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

// window cuts s to what scrubbing looks at.
func window(s string) string {
	if len(s) > scrubWindow {
		return s[:scrubWindow]
	}
	return s
}

// printable turns every character that is not printable (invalid UTF-8
// included) into a space, never into nothing, so control characters
// cannot split a token in two that joins again once they are gone.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
}

// scrubFields scrubs strings one answer carries side by side (an OAuth
// error and its error_description), which a message prints one after the
// other: each as scrub does, and also a token split between two of them,
// its start at the end of one and the rest at the start of the other (in
// either order), so that no reader can join the halves again. Each half
// alone may be too short to be recognised as a piece of the token.
func scrubFields(secrets []string, fields ...string) []string {
	n := len(fields)
	pre := make([]string, n)
	keepFrom, keepTo := make([]int, n), make([]int, n)
	for i, f := range fields {
		pre[i] = printable(window(f))
		keepTo[i] = len(pre[i])
	}
	for i := range pre {
		for j := range pre {
			if i == j {
				continue
			}
			edge := len(pre[i])
			for _, r := range secretRanges(pre[i]+pre[j], secrets) {
				if r[0] < edge && r[1] > edge {
					keepTo[i] = min(keepTo[i], r[0])
					keepFrom[j] = max(keepFrom[j], r[1]-edge)
				}
			}
		}
	}
	out := make([]string, n)
	for i, f := range fields {
		switch {
		case keepFrom[i] == 0 && keepTo[i] == len(pre[i]):
			out[i] = scrub(f, secrets...)
		case keepFrom[i] >= keepTo[i]:
			out[i] = redacted
		default:
			mid := scrub(pre[i][keepFrom[i]:keepTo[i]], secrets...)
			if keepFrom[i] > 0 {
				mid = redacted + " " + mid
			}
			if keepTo[i] < len(pre[i]) {
				mid += " " + redacted
			}
			out[i] = strings.TrimSpace(mid)
		}
	}
	return out
}

// secretRanges returns where in s a secret lies, as byte ranges: each
// spelling redact replaces, and each run of at least minSecretPart of its
// bytes.
func secretRanges(s string, secrets []string) [][2]int {
	var out [][2]int
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		for _, form := range spellings(secret) {
			for at := 0; ; {
				k := strings.Index(s[at:], form)
				if k < 0 {
					break
				}
				out = append(out, [2]int{at + k, at + k + len(form)})
				at += k + 1
			}
		}
		if len(secret) >= minSecretPart {
			out = append(out, partRanges(s, secret)...)
		}
	}
	return out
}

// spellings are the ways a request carries secret: plain, form-encoded
// and JSON-escaped.
func spellings(secret string) []string {
	quoted, _ := json.Marshal(secret)
	return []string{secret, url.QueryEscape(secret), string(quoted[1 : len(quoted)-1])}
}

// redact replaces each secret in s, in its plain, form-encoded and
// JSON-escaped spellings, then any long run of its bytes.
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		for _, form := range spellings(secret) {
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
	last := 0
	for _, r := range partRanges(s, secret) {
		b.WriteString(s[last:r[0]])
		b.WriteString(redacted)
		last = r[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// partRanges returns, left to right and not overlapping, the longest runs
// of at least minSecretPart bytes of s that also occur in secret.
func partRanges(s, secret string) [][2]int {
	var out [][2]int
	for i := 0; i+minSecretPart <= len(s); {
		if !strings.Contains(secret, s[i:i+minSecretPart]) {
			i++
			continue
		}
		j := i + minSecretPart
		for j < len(s) && strings.Contains(secret, s[i:j+1]) {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}
