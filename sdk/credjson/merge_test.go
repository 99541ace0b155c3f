package credjson_test

import (
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
)

// TestMergeKeepsEveryOtherKeyAndRefusesWhatDoesNotParse is the
// read-modify-write both the file and the secret stores use.
func TestMergeKeepsEveryOtherKeyAndRefusesWhatDoesNotParse(t *testing.T) {
	t.Parallel()
	cred := sdk.Credential{AccessToken: "new-access", RefreshToken: "new-refresh", ExpiresAt: time.UnixMilli(1767225600000)}
	tests := map[string]struct {
		old      []byte
		want     []string // substrings of the result, in order
		wantErr  string
		notQuote string // must not appear in the error
	}{
		"nothing yet": {old: nil, want: []string{`{"claudeAiOauth":{"accessToken":"new-access","refreshToken":"new-refresh","expiresAt":1767225600000}}`}},
		"other keys kept in order": {
			old:  []byte(`{"mcpOAuth":{"x":1},"claudeAiOauth":{"accessToken":"old","subscriptionType":"max"},"z":true}`),
			want: []string{`{"mcpOAuth":{"x":1},"claudeAiOauth":{"accessToken":"new-access","subscriptionType":"max"`, `"z":true}`},
		},
		"no credential under the key yet": {old: []byte(`{"other":1}`), want: []string{`{"other":1,"claudeAiOauth":{"accessToken":"new-access"`}},
		"malformed":                       {old: []byte(`{"claudeAiOauth": {"accessToken": "secret-old",`), wantErr: "refusing to overwrite", notQuote: "secret-old"},
		"empty but present":               {old: []byte{}, wantErr: "refusing to overwrite"},
		"not an object":                   {old: []byte(`["secret-old"]`), wantErr: "refusing to overwrite", notQuote: "secret-old"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := credjson.Merge(tc.old, credjson.DefaultKey, cred)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || out != nil {
					t.Fatalf("Merge = %q, %v; want no output and an error saying %q", out, err, tc.wantErr)
				}
				if tc.notQuote != "" && strings.Contains(err.Error(), tc.notQuote) {
					t.Errorf("the error quotes the old content: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rest := string(out)
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("Merge = %s; want %s (in order)", out, w)
				}
				rest = rest[i+len(w):]
			}
			if _, got, err := credjson.Parse(out, credjson.DefaultKey); err != nil || got.AccessToken != cred.AccessToken || !got.ExpiresAt.Equal(cred.ExpiresAt) {
				t.Errorf("the merged document reads back as %v, %v", got, err)
			}
		})
	}
}

// TestEpochThresholdIsSdks: the document's expiresAt and sdk.ParseExpiry
// read a number on either side of sdk.EpochMillisThreshold alike.
func TestEpochThresholdIsSdks(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"999999999999", "1000000000000", "1000000000001", "1767225600", "1767225600000"} {
		want, err := sdk.ParseExpiry(n)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := credjson.Parse([]byte(`{"k":{"accessToken":"a","expiresAt":`+n+`}}`), "k")
		if err != nil || !got.ExpiresAt.Equal(want) {
			t.Errorf("expiresAt %s: credjson %v (%v), sdk %v; want the same time", n, got.ExpiresAt, err, want)
		}
	}
}
