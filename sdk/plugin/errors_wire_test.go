package plugin

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/credhost/credhost/sdk"
)

// TestReasonAndHintCrossTheWire sends a NotFound with a hint through a real
// gRPC connection: the host side reads the reason alone, matches the
// sentinel and finds the hint.
func TestReasonAndHintCrossTheWire(t *testing.T) {
	t.Parallel()
	p := dialInMemory(t, errProvider{err: sdk.NotFound("$TOKEN is not set").WithHint("set $TOKEN")})
	_, err := p.Read(context.Background())
	if err == nil || err.Error() != "$TOKEN is not set" || !errors.Is(err, sdk.ErrNotFound) || sdk.Hint(err) != "set $TOKEN" {
		t.Fatalf("got %v (hint %q); want the reason alone, matching sdk.ErrNotFound, with its hint", err, sdk.Hint(err))
	}
}

// TestPrefixedPluginErrorsReadOnce: a plugin built before the
// constructors, or written in another language, may send the sentinel's
// words in front of the reason; the host side reads the reason alone, as
// from sdk.NotFound, and still matches the sentinel by the code. No meaning
// and no wording depends on the prefix.
func TestPrefixedPluginErrorsReadOnce(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		code     codes.Code
		msg      string
		want     error
		wantText string
	}{
		"not found":         {codes.NotFound, "no credential found: $TOKEN is not set", sdk.ErrNotFound, "$TOKEN is not set"},
		"not found, plain":  {codes.NotFound, "$TOKEN is not set", sdk.ErrNotFound, "$TOKEN is not set"},
		"capitalised":       {codes.NotFound, "No credential found:  nothing in /x", sdk.ErrNotFound, "nothing in /x"},
		"only the words":    {codes.NotFound, "no credential found", sdk.ErrNotFound, "no credential found"},
		"words, no colon":   {codes.NotFound, "no credential found here", sdk.ErrNotFound, "no credential found here"},
		"unsupported":       {codes.Unimplemented, "operation not supported: read-only", sdk.ErrUnsupported, "read-only"},
		"invalid config":    {codes.InvalidArgument, `invalid provider config: key "var" is required`, sdk.ErrInvalidConfig, `key "var" is required`},
		"invalid grant":     {codes.PermissionDenied, "refresh token rejected: invalid_grant", sdk.ErrInvalidGrant, "invalid_grant"},
		"other code intact": {codes.Internal, "no credential found: but a fault", nil, "no credential found: but a fault"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := statusToErr(status.Error(tc.code, tc.msg))
			if err.Error() != tc.wantText || (tc.want != nil && !errors.Is(err, tc.want)) || sdk.Hint(err) != "" {
				t.Errorf("%q came back as %q (hint %q); want %q, matching %v", tc.msg, err, sdk.Hint(err), tc.wantText, tc.want)
			}
		})
	}
}
