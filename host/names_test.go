package host

import (
	"regexp"
	"strings"
	"testing"
)

// nameInputs are strings at the edges of the name checks: empty, a leading
// digit, '_', '.' or '-', every neighbour of the accepted byte ranges, a
// trailing newline ($ in Go's regexp does not match before one), non-ASCII.
var nameInputs = []string{
	"", "a", "Z", "0", "9", "_", ".", "-", "a_b", "a.b", "a-b", "0abc", "_x", ".x", "-x",
	"file", "oauth-env", "my.store_2", "A1", "a b", "a\n", "a\x00", "é", "aé", "a/b", "a$", "${X}",
	"@", "[", "`", "{", "/", ":", "G", "g", "F", "f",
	strings.Repeat("a", 64), strings.Repeat("F", 64), strings.Repeat("0", 63), strings.Repeat("0", 65),
	strings.Repeat("0", 63) + "g", strings.Repeat("0", 63) + "\n", strings.Repeat("9", 64),
}

// The written-out name checks accept exactly what the regular expressions
// they replaced accept (they were package-level regexps, compiled at every
// start).
func TestNameChecksMatchTheirPatterns(t *testing.T) {
	t.Parallel()
	checks := []struct {
		name    string
		pattern string
		check   func(string) bool
	}{
		{"isProviderName", `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, isProviderName},
		{"isHex64", `^[0-9a-fA-F]{64}$`, isHex64},
		{"isEnvName", `^[A-Za-z_][A-Za-z0-9_]*$`, isEnvName},
	}
	var inputs []string
	for b := range 256 {
		inputs = append(inputs, string([]byte{byte(b)}), "a"+string([]byte{byte(b)}), strings.Repeat("a", 63)+string([]byte{byte(b)}))
	}
	inputs = append(inputs, nameInputs...)
	for _, c := range checks {
		re := regexp.MustCompile(c.pattern)
		for _, in := range inputs {
			if got, want := c.check(in), re.MatchString(in); got != want {
				t.Errorf("%s(%q) = %v; %s says %v", c.name, in, got, c.pattern, want)
			}
		}
	}
}

func FuzzNameChecks(f *testing.F) {
	for _, in := range nameInputs {
		f.Add(in)
	}
	provider := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	hex := regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	env := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	f.Fuzz(func(t *testing.T, s string) {
		if isProviderName(s) != provider.MatchString(s) || isHex64(s) != hex.MatchString(s) || isEnvName(s) != env.MatchString(s) {
			t.Errorf("%q: isProviderName %v, isHex64 %v, isEnvName %v; the patterns say %v, %v, %v",
				s, isProviderName(s), isHex64(s), isEnvName(s), provider.MatchString(s), hex.MatchString(s), env.MatchString(s))
		}
	})
}
