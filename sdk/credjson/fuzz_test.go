package credjson

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParse: parsing never panics; a parsed credential has a token and
// no error ever quotes it; encode then parse gives the same credential and
// keeps the other keys.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, cred, err := Parse(data, "claudeAiOauth")
		if err != nil {
			if cred.AccessToken != "" && len(cred.AccessToken) > 8 && strings.Contains(err.Error(), cred.AccessToken) {
				t.Fatalf("error quotes the token: %v", err)
			}
			return
		}
		if cred.AccessToken == "" {
			t.Fatal("success with an empty access token")
		}
		out, err := doc.Encode("claudeAiOauth", cred)
		if err != nil {
			if strings.Contains(err.Error(), "would overwrite") {
				return // metadata named like an owned field cannot exist after parse, but stay safe
			}
			t.Fatalf("encode: %v", err)
		}
		doc2, again, err := Parse(out, "claudeAiOauth")
		if err != nil {
			t.Fatalf("re-parse of encoded Document: %v\n%s", err, out)
		}
		if again.AccessToken != cred.AccessToken || again.RefreshToken != cred.RefreshToken ||
			!again.ExpiresAt.Equal(cred.ExpiresAt) || !slices.Equal(again.Scopes, cred.Scopes) || !maps.Equal(again.Metadata, cred.Metadata) {
			t.Fatalf("round trip changed the credential: %v -> %v", cred, again)
		}
		if len(doc2.top) != len(doc.top) {
			t.Fatalf("round trip changed the top-level keys: %d -> %d", len(doc.top), len(doc2.top))
		}
		// Every field of the credential object survives; the ones Save does
		// not own keep their bytes.
		for _, m := range doc.inner {
			raw, ok := doc2.inner.get(m.key)
			if !ok {
				t.Fatalf("round trip lost the field %q", m.key)
			}
			switch m.key {
			case fieldAccess, fieldRefresh, fieldExpires, fieldScopes:
			default:
				if jsonKind(m.raw) != "string" && !bytes.Equal(raw, m.raw) {
					t.Fatalf("round trip changed the non-string field %q", m.key)
				}
			}
		}
	})
}
