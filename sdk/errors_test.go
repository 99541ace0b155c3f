package sdk

import (
	"errors"
	"io/fs"
	"testing"
)

// TestConstructorsReadAsTheReasonAndMatchTheSentinel: the text is the
// reason alone, errors.Is finds the one sentinel it was built as (and a
// cause wrapped with %w), and a hint rides along without entering the text.
func TestConstructorsReadAsTheReasonAndMatchTheSentinel(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err  *Error
		kind error
	}{
		"not found":      {NotFound("$%s is not set", "TOKEN"), ErrNotFound},
		"unsupported":    {Unsupported("$%s is not set", "TOKEN"), ErrUnsupported},
		"invalid config": {InvalidConfig("$%s is not set", "TOKEN"), ErrInvalidConfig},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.err.WithHint("set $TOKEN", "", "or log in")
			if got := err.Error(); got != "$TOKEN is not set" {
				t.Errorf("Error() = %q; want the reason alone", got)
			}
			for _, s := range []error{ErrNotFound, ErrUnsupported, ErrInvalidConfig, ErrInvalidGrant} {
				if errors.Is(err, s) != (s == tc.kind) {
					t.Errorf("errors.Is(err, %v) = %v; want %v", s, errors.Is(err, s), s == tc.kind)
				}
			}
			if got := Hint(err); got != "set $TOKEN\nor log in" {
				t.Errorf("Hint = %q; want the two lines given", got)
			}
			if Hint(tc.err) != "" {
				t.Errorf("WithHint changed the error it was called on")
			}
		})
	}
	wrapped := NotFound("no file: %w", fs.ErrNotExist)
	if !errors.Is(wrapped, fs.ErrNotExist) || !errors.Is(wrapped, ErrNotFound) || wrapped.Error() != "no file: file does not exist" {
		t.Errorf("%v: want both the cause and the sentinel to match, and the reason as text", wrapped)
	}
	if Hint(errors.New("plain")) != "" {
		t.Errorf("a plain error has a hint")
	}
}
