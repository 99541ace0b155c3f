package sdk

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// How an epoch number in a store reads: a value above EpochMillisThreshold
// is epoch milliseconds, anything up to it epoch seconds (1e12 seconds is
// the year 33658; 1e12 milliseconds is September 2001, before any token a
// store holds today). A value above MaxEpochMillis (the year 318857 even as
// milliseconds) is not an expiry at all. ExpiryFromEpoch applies this; a
// store's own parser (sdk/credjson) uses the same two numbers.
const (
	EpochMillisThreshold = 1e12
	MaxEpochMillis       = 1e16
)

// ParseExpiry parses an expiry as stores write it: epoch milliseconds or
// seconds as a decimal number (values above 1e12 are milliseconds), or an
// RFC 3339 time. "" and "0" mean unknown and return the zero Time. An
// unparsable value is not quoted in the error: a token pasted into the wrong
// variable or field must not reach a log.
func ParseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if c := s[0]; c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9') {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return time.Time{}, errExpiryFormat
		}
		return ExpiryFromEpoch(f)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errExpiryFormat
	}
	return t, nil
}

var errExpiryFormat = errors.New("expiry is not epoch seconds, epoch milliseconds or an RFC 3339 time (the value is not shown: it may be a misplaced secret)")

// ExpiryFromEpoch converts an epoch number as stores write it (milliseconds
// above 1e12, seconds otherwise) to a Time; 0 means unknown.
func ExpiryFromEpoch(v float64) (time.Time, error) {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return time.Time{}, fmt.Errorf("expiry %v is not a number", v)
	case v < 0:
		return time.Time{}, fmt.Errorf("expiry %v is negative", v)
	case v == 0:
		return time.Time{}, nil
	case v > MaxEpochMillis:
		return time.Time{}, fmt.Errorf("expiry %v is out of range", v)
	case v > EpochMillisThreshold:
		return time.UnixMilli(int64(v)), nil
	default:
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
}
