package env

import (
	"regexp"
	"strings"
	"testing"
)

// isVarName accepts exactly what the regular expression it replaced
// accepts (a package-level regexp, compiled at every start).
func TestIsVarNameMatchesItsPattern(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	inputs := []string{"", "A", "_", "0", "9A", "A9", "_9", "ANTHROPIC_AUTH_TOKEN", "a b", "A\n", "A-B", "é", strings.Repeat("x", 300)}
	for b := range 256 {
		inputs = append(inputs, string([]byte{byte(b)}), "A"+string([]byte{byte(b)}))
	}
	for _, in := range inputs {
		if got, want := isVarName(in), re.MatchString(in); got != want {
			t.Errorf("isVarName(%q) = %v; the pattern says %v", in, got, want)
		}
	}
}
