package host

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// minPlainUnexpand is the shortest expanded value taken back out of a
// message where it is not quoted: a secret is longer, and replacing a
// shorter value ("in-process", "300") would garble words, numbers and
// paths that merely contain it. A quoted value is replaced whatever its
// length: the quotes make the match exact.
const minPlainUnexpand = 16

// expansion is one value as the config file says it (raw) and as the
// environment made it (value).
type expansion struct {
	raw, value string
}

// unexpander rewrites a message so that every value ${VAR} expansion put
// into the config reads again as the config file says it. A config value
// can come from a secret in the environment, and an error that quotes it
// (the host's, or a plugin's about its config) would print the secret.
// The zero unexpander changes nothing. The rewrite is built when first
// used: most processes never print a message that needs it, and building
// it quotes every expanded value three ways.
type unexpander struct {
	lazy *lazyUnexpander
}

// lazyUnexpander is an unexpander's rewrite, built once, on first use.
type lazyUnexpander struct {
	once  sync.Once
	pairs []expansion
	r     *strings.Replacer
}

// replacer is the rewrite, or nil when there is nothing to rewrite.
func (u unexpander) replacer() *strings.Replacer {
	if u.lazy == nil {
		return nil
	}
	u.lazy.once.Do(func() { u.lazy.r = buildUnexpander(u.lazy.pairs) })
	return u.lazy.r
}

// newUnexpander builds the rewrite for pairs: each value, as Go's %q and
// JSON quote it, as $NAME when it is a variable name, and, when it may be
// a secret (at least minPlainUnexpand long and not a path), plain, becomes
// its raw text; a longer value wins,
// then the earlier pair, in one pass, so a replacement is never rewritten
// again. A path is left plain so that messages keep naming the real file.
func newUnexpander(pairs []expansion) unexpander {
	for _, e := range pairs {
		if e.value != "" {
			return unexpander{lazy: &lazyUnexpander{pairs: slices.Clone(pairs)}}
		}
	}
	return unexpander{}
}

// buildUnexpander is newUnexpander's rewrite, nil when it has nothing to
// rewrite.
func buildUnexpander(pairs []expansion) *strings.Replacer {
	slices.SortStableFunc(pairs, func(a, b expansion) int { return cmp.Compare(len(b.value), len(a.value)) })
	var oldnew []string
	seen := map[string]bool{}
	add := func(old, new string) {
		if old != new && !seen[old] {
			seen[old] = true
			oldnew = append(oldnew, old, new)
		}
	}
	for _, e := range pairs {
		if e.value == "" {
			continue
		}
		add(strconv.Quote(e.value), strconv.Quote(e.raw))
		v, _ := json.Marshal(e.value)
		r, _ := json.Marshal(e.raw)
		add(string(v), string(r))
		if isEnvName(e.value) {
			// A variable name is quoted as $NAME ("$NAME is not set"),
			// unambiguous however short.
			add("$"+e.value, "$"+strings.TrimPrefix(e.raw, "$"))
		}
		if len(e.value) >= minPlainUnexpand && !strings.ContainsAny(e.value, `/\`) {
			add(inner(strconv.Quote(e.value)), inner(strconv.Quote(e.raw)))
			add(e.value, e.raw)
		}
	}
	if len(oldnew) == 0 {
		return nil
	}
	return strings.NewReplacer(oldnew...)
}

func inner(quoted string) string { return quoted[1 : len(quoted)-1] }

// apply rewrites msg.
func (u unexpander) apply(msg string) string {
	r := u.replacer()
	if r == nil {
		return msg
	}
	return r.Replace(msg)
}

// applyErr rewrites err's message, keeping err for errors.Is and As.
func (u unexpander) applyErr(err error) error {
	if err == nil || u.replacer() == nil {
		return err
	}
	msg := err.Error()
	if out := u.apply(msg); out != msg {
		return &unexpandedError{msg: out, err: err}
	}
	return err
}

// unexpandedError is an error whose message was unexpanded.
type unexpandedError struct {
	msg string
	err error
}

func (e *unexpandedError) Error() string { return e.msg }
func (e *unexpandedError) Unwrap() error { return e.err }
