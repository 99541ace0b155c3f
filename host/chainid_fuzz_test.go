package host

import (
	"bytes"
	"testing"
)

// A config of any shape YAML gives (block values of every kind, keys in
// any order, quoted and unquoted strings, numbers YAML reads as floats or
// as ints too big for int) hashes the bytes encoding/json wrote for it, so
// an old client and a new daemon (or the reverse) agree on the chain.
func FuzzChainJSONOfParsedConfigMatchesEncodingJSON(f *testing.F) {
	f.Add("version: 1\nproviders:\n  - name: a\n    plugin: env\n    config: {x: 1, y: [1.5, 'a<b', null, {k: v}], z: 1e400}\n")
	f.Add("version: 1\nproviders:\n  - name: \"\\u2028\\xff\"\n    plugin: env\n    config: {b: 2024-01-02, a: 0x10, c: 18446744073709551615, d: -0.0, e: .inf}\n")
	f.Add("version: 1\noauth: {scopes: ['<&>', \"\\t\"]}\nproviders:\n  - name: p\n    plugin: file\n    env: [A, B]\n    config: {path: '/x', '': ~, 'é': !!binary aGk=}\n")
	f.Fuzz(func(t *testing.T, text string) {
		noEnv := func(string) (string, bool) { return "", false }
		cfg, err := ParseConfig([]byte(text), "fuzz.yaml", noEnv)
		if err != nil {
			return
		}
		env := []envValue{{Name: "A", Set: true, Value: text}}
		var want []byte
		func() {
			defer func() {
				if recover() != nil {
					want = nil
				}
			}()
			want = legacyChainJSON(t, cfg, env)
		}()
		if want == nil {
			return
		}
		if got := appendChainJSON(nil, cfg, env); !bytes.Equal(got, want) {
			t.Errorf("config\n%s\nappendChainJSON wrote\n%s\nencoding/json wrote\n%s", text, got, want)
		}
	})
}

// Two processes whose environments give a variable the chain reads values
// that differ only in bytes that are not UTF-8 read different tokens, so
// their chain IDs must differ: else the daemon serves one the other's
// token. JSON writes every such byte as U+FFFD, so hashing the JSON alone
// cannot tell them apart.
func TestChainIDTellsApartValuesDifferingInBytesThatAreNotUTF8(t *testing.T) {
	t.Parallel()
	env := func(token string) []string {
		return []string{"HOME=/home/u", "PATH=/usr/bin", "ANTHROPIC_AUTH_TOKEN=" + token}
	}
	a := chainIDOf(t, chainIDConfig, "a.yaml", env("sk-ant-\xff"))
	b := chainIDOf(t, chainIDConfig, "a.yaml", env("sk-ant-\xfe"))
	if a == b {
		t.Errorf("tokens sk-ant-\\xff and sk-ant-\\xfe have one chain ID, %s; want two", a)
	}
}
