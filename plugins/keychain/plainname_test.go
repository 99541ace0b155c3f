package keychain

import (
	"regexp"
	"testing"
)

// isPlainName accepts exactly what the regular expression it replaced
// accepts (a package-level regexp, compiled at every start).
func TestIsPlainNameMatchesItsPattern(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	inputs := []string{"", "alice", "a.b_c-d", "DOMAIN\\user", "a b", "a\n", "é", "-", ".", "_"}
	for b := range 256 {
		inputs = append(inputs, string([]byte{byte(b)}), "a"+string([]byte{byte(b)}))
	}
	for _, in := range inputs {
		if got, want := isPlainName(in), re.MatchString(in); got != want {
			t.Errorf("isPlainName(%q) = %v; the pattern says %v", in, got, want)
		}
	}
}
