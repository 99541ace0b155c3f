package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Duration is a length of time in a config: a Go duration string ("5m",
// "90s", "1h30m") or a whole number of seconds (300, or "300"). It is never
// negative. The host's config and every provider's config block read
// durations this way, so `timeout: 300` means the same wherever it is
// written. Whether 0 is allowed is up to the key (a bound of 0 may mean "no
// bound", or be refused): check it after decoding.
//
// Embed a Duration in a config struct decoded with
// ConfigureRequest.DecodeConfig; a bad value is an error naming the key.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// ParseDuration reads a Go duration ("5m") or whole seconds ("300"), which
// must not be negative. Its errors quote s and say what is wanted.
func ParseDuration(s string) (Duration, error) {
	v := strings.TrimSpace(s)
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, fmt.Errorf("%q is negative; want a duration >= 0", s)
		}
		if secs > int64((1<<63-1)/time.Second) {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return Duration(time.Duration(secs) * time.Second), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; want e.g. 5m, 90s, 1h30m or whole seconds such as 300", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative; want a duration >= 0", s)
	}
	return Duration(d), nil
}

// UnmarshalText reads d as ParseDuration does. YAML decoders (gopkg.in/yaml.v3)
// use it for a scalar, quoted or not.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// durationType is Duration's reflect.Type, for errors that name the key.
var durationType = reflect.TypeFor[Duration]()

// UnmarshalJSON reads a JSON string as ParseDuration does, or a JSON number
// of whole seconds; null leaves d unchanged. A bad value is a
// *json.UnmarshalTypeError, so encoding/json adds the key's path to it, whose
// Value says what is wrong with the value.
func (d *Duration) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	var text string
	switch {
	case string(data) == "null":
		return nil
	case len(data) > 0 && data[0] == '"':
		if err := json.Unmarshal(data, &text); err != nil {
			return err
		}
	case len(data) > 0 && (data[0] == '-' || (data[0] >= '0' && data[0] <= '9')):
		text = string(data) // whole seconds; "1.5" fails as in YAML
	default:
		return &json.UnmarshalTypeError{Value: "want a duration such as \"5m\" or 300 (seconds), got " + jsonKind(data), Type: durationType}
	}
	v, err := ParseDuration(text)
	if err != nil {
		return &json.UnmarshalTypeError{Value: err.Error(), Type: durationType}
	}
	*d = v
	return nil
}

// jsonKind names the kind of a JSON value, for messages.
func jsonKind(data []byte) string {
	switch {
	case len(data) == 0:
		return "nothing"
	case data[0] == '{':
		return "an object"
	case data[0] == '[':
		return "a list"
	case data[0] == 't' || data[0] == 'f':
		return "a boolean"
	}
	return "a value"
}
