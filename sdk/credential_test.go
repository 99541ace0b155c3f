package sdk

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCredentialNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	c := Credential{AccessToken: "tok-secret-access", RefreshToken: "tok-secret-refresh", ExpiresAt: time.Unix(1900000000, 0)}
	js, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{c.String(), fmt.Sprintf("%v|%+v|%#v|%s", c, c, c, c), string(js), fmt.Sprint(&c)} {
		if contains(out, "tok-secret") {
			t.Errorf("secret printed: %s", out)
		}
		if !contains(out, Fingerprint("tok-secret-access")) {
			t.Errorf("fingerprint missing from %s", out)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
