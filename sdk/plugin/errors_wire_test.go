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

// TestOldPluginErrorsReadOnce: a plugin built before the constructors sent
// the sentinel's words in front of the reason and no hint; the host side
// keeps its text as it came (no second prefix) and still matches.
func TestOldPluginErrorsReadOnce(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		code codes.Code
		msg  string
		want error
	}{
		"not found":      {codes.NotFound, "no credential found: $TOKEN is not set", sdk.ErrNotFound},
		"unsupported":    {codes.Unimplemented, "operation not supported: read-only", sdk.ErrUnsupported},
		"invalid config": {codes.InvalidArgument, `invalid provider config: key "var" is required`, sdk.ErrInvalidConfig},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := statusToErr(status.Error(tc.code, tc.msg))
			if err.Error() != tc.msg || !errors.Is(err, tc.want) || sdk.Hint(err) != "" {
				t.Errorf("got %q (hint %q); want %q as it came, matching %v", err, sdk.Hint(err), tc.msg, tc.want)
			}
		})
	}
}
