// Package credjson reads and writes the credentials JSON document that Claude
// Code keeps in ~/.claude/.credentials.json and in the OS keychain:
//
//	{"claudeAiOauth": {"accessToken": "...", "refreshToken": "...",
//	  "expiresAt": 1767225600000, "scopes": [...], "subscriptionType": "max"},
//	 "mcpOAuth": {...}}
//
// An optional helper: a provider whose store holds this document may use
// it; the contract a provider implements is package sdk.
//
// It is shared by every store that holds this document (plugins/file,
// plugins/keychain), so they agree on every detail: expiresAt may be epoch
// milliseconds or seconds (above 1e12 is milliseconds) or an RFC 3339
// string; string fields other than the tokens are Credential.Metadata; a
// missing key or access token is ErrNoCredential; anything malformed is an
// error that names the field and never quotes a value. Encode rewrites the
// document keeping every key it does not own, in the original order, and
// writes expiresAt as integer milliseconds.
//
// Functions are pure; a Document is not safe for concurrent mutation (Encode
// does not mutate it).
package credjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/credhost/credhost/sdk"
)

// Fields of the credential object that the provider owns; every other field
// is kept as it is on Save.
const (
	fieldAccess  = "accessToken"
	fieldRefresh = "refreshToken"
	fieldExpires = "expiresAt"
	fieldScopes  = "scopes"
)

// member is one key of a JSON object, with its value as written.
type member struct {
	key string
	raw json.RawMessage
}

// object is a JSON object that remembers its key order, so a rewrite keeps
// the file's layout.
type object []member

func (o object) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.raw, true
		}
	}
	return nil, false
}

func (o *object) set(key string, raw json.RawMessage) {
	for i, m := range *o {
		if m.key == key {
			(*o)[i].raw = raw
			return
		}
	}
	*o = append(*o, member{key, raw})
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.raw)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// errNotObject says the Document or value is not a JSON object.
var errNotObject = errors.New("not a JSON object")

// parseObject parses one JSON object, keeping key order. A duplicate key
// keeps its last value, as encoding/json does.
func parseObject(data []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("malformed JSON object")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(err)
		}
		o.set(key, raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxError(err)
	}
	// Only whitespace may follow. Token fails on trailing garbage rather
	// than returning it, so anything but io.EOF here is trailing data.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON object")
	}
	return o, nil
}

// syntaxError describes a JSON error by position only: encoding/json's
// messages can quote the offending input, which may be a token.
func syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed JSON at byte %d", se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated JSON")
	}
	return errors.New("malformed JSON")
}

// jsonKind names the type of a raw JSON value for messages.
func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// DefaultKey is the object Claude Code keeps its OAuth credential under.
const DefaultKey = "claudeAiOauth"

// Document is a parsed credentials document; the zero value is an empty one
// (Encode then writes a document holding only the credential).
type Document struct {
	top   object
	inner object // the credential object; nil when the key is absent
}

// ErrNoCredential is the not-found case of Parse: the document has no object
// under the key, or that object has no access token. The error Parse
// returns matches it with errors.Is; its text is the reason alone (`no
// "claudeAiOauth" object`), ready for sdk.NotFound.
var ErrNoCredential = errors.New("no credential")

// noCredential is Parse's not-found error: the reason, matching
// ErrNoCredential.
type noCredential struct{ reason string }

func (e noCredential) Error() string        { return e.reason }
func (e noCredential) Is(target error) bool { return target == ErrNoCredential }

// Parse parses a credentials file and the credential under key. It
// returns ErrNoCredential (with the Document) when the file holds no
// credential under key; other errors name the field, never its value.
func Parse(data []byte, key string) (*Document, sdk.Credential, error) {
	top, err := parseObject(data)
	if err != nil {
		if errors.Is(err, errNotObject) {
			return nil, sdk.Credential{}, errors.New("the file is not a JSON object")
		}
		return nil, sdk.Credential{}, err
	}
	doc := &Document{top: top}
	raw, ok := top.get(key)
	if !ok || isNull(raw) {
		return doc, sdk.Credential{}, noCredential{fmt.Sprintf("no %q object", key)}
	}
	inner, err := parseObject(raw)
	if err != nil {
		if errors.Is(err, errNotObject) {
			return nil, sdk.Credential{}, fmt.Errorf("%s: want an object, got %s", key, jsonKind(raw))
		}
		return nil, sdk.Credential{}, fmt.Errorf("%s: %w", key, err)
	}
	doc.inner = inner
	cred, err := credentialOf(inner, key)
	return doc, cred, err
}

func credentialOf(o object, key string) (sdk.Credential, error) {
	var c sdk.Credential
	str := func(field string) (string, error) {
		raw, ok := o.get(field)
		if !ok || isNull(raw) {
			return "", nil
		}
		var s string
		if jsonKind(raw) != "string" || json.Unmarshal(raw, &s) != nil {
			return "", fmt.Errorf("%s.%s: want a string, got %s", key, field, jsonKind(raw))
		}
		return s, nil
	}
	var err error
	if c.AccessToken, err = str(fieldAccess); err != nil {
		return c, err
	}
	if c.RefreshToken, err = str(fieldRefresh); err != nil {
		return c, err
	}
	if raw, ok := o.get(fieldExpires); ok {
		if c.ExpiresAt, err = parseExpiry(raw); err != nil {
			return c, fmt.Errorf("%s.%s: %w", key, fieldExpires, err)
		}
	}
	if raw, ok := o.get(fieldScopes); ok && !isNull(raw) {
		if c.Scopes, err = parseScopes(raw); err != nil {
			return c, fmt.Errorf("%s.%s: %w", key, fieldScopes, err)
		}
	}
	for _, m := range o {
		switch m.key {
		case fieldAccess, fieldRefresh, fieldExpires, fieldScopes:
			continue
		}
		var s string
		if jsonKind(m.raw) == "string" && json.Unmarshal(m.raw, &s) == nil {
			if c.Metadata == nil {
				c.Metadata = map[string]string{}
			}
			c.Metadata[m.key] = s
		}
	}
	if c.AccessToken == "" {
		return c, noCredential{fmt.Sprintf("%s has no %s", key, fieldAccess)}
	}
	return c, nil
}

// errExpiryString is the fault for an expiry string that is neither an
// RFC 3339 time nor a number. It does not quote the string: a token pasted
// into the wrong field must not end up in a log.
var errExpiryString = errors.New("want epoch milliseconds, epoch seconds or an RFC 3339 time, got a string that is none of these")

// parseExpiry reads expiresAt: a JSON number (epoch milliseconds above 1e12,
// else epoch seconds; whole and not negative), a string holding an RFC 3339
// time or such a number in decimal digits, or null. null, 0, "" and the epoch
// itself mean unknown (the zero Time). The result is in UTC, truncated to the
// millisecond: the precision encode writes, so a save and re-read give back
// the same expiry.
func parseExpiry(raw json.RawMessage) (time.Time, error) {
	switch jsonKind(raw) {
	case "null":
		return time.Time{}, nil
	case "number":
		return expiryFromNumber(string(bytes.TrimSpace(raw)))
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, errExpiryString
		}
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			return time.Time{}, nil
		case isDigits(s):
			return expiryFromNumber(s)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, errExpiryString
		}
		if t.Before(time.Unix(0, 0)) {
			return time.Time{}, errors.New("expiry is before 1970")
		}
		return normalizeExpiry(t), nil
	}
	return time.Time{}, fmt.Errorf("want epoch milliseconds or an RFC 3339 string, got %s", jsonKind(raw))
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// expiryFromNumber applies the milliseconds-or-seconds rule to the text of a
// JSON number or a digit string. Plain digits are parsed exactly; other forms
// ("1.7e12") must still be whole. A number is quoted in messages: it cannot
// be a token.
func expiryFromNumber(s string) (time.Time, error) {
	if isDigits(s) {
		n, err := strconv.ParseUint(s, 10, 64)
		switch {
		case err != nil || n > sdk.MaxEpochMillis:
			return time.Time{}, fmt.Errorf("expiry %.20s is out of range", s)
		case n > sdk.EpochMillisThreshold:
			return normalizeExpiry(time.UnixMilli(int64(n))), nil
		default:
			return normalizeExpiry(time.Unix(int64(n), 0)), nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsInf(v, 0) || math.IsNaN(v) || v > sdk.MaxEpochMillis:
		return time.Time{}, fmt.Errorf("expiry %.20s is out of range", s)
	case v < 0:
		return time.Time{}, fmt.Errorf("expiry %.20s is negative", s)
	case v != math.Trunc(v):
		return time.Time{}, fmt.Errorf("expiry %.20s has a fraction; want whole epoch milliseconds or seconds", s)
	case v > sdk.EpochMillisThreshold:
		return normalizeExpiry(time.UnixMilli(int64(v))), nil
	default:
		return normalizeExpiry(time.Unix(int64(v), 0)), nil
	}
}

// normalizeExpiry truncates t to the millisecond, in UTC; the epoch itself,
// like 0, means unknown.
func normalizeExpiry(t time.Time) time.Time {
	ms := t.UnixMilli()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// encodeExpiry is what Save writes for an expiry: integer epoch milliseconds
// (Claude Code's form), or null when unknown. Before September 2001 a
// millisecond count would read back as seconds (values above 1e12 are
// milliseconds), so such an expiry, which only tests use, is written as whole
// seconds, or as an RFC 3339 string when it has a fraction of a second: it
// reads back as the same time either way. An expiry Read would reject is an
// error rather than a file Read then faults on.
func encodeExpiry(t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	ms := t.UnixMilli()
	switch {
	case ms == 0:
		return nil, nil
	case ms < 0:
		return nil, errors.New("expiry is before 1970")
	case ms > sdk.MaxEpochMillis:
		return nil, errors.New("expiry is out of range")
	case ms > sdk.EpochMillisThreshold:
		return ms, nil
	case ms%1000 == 0:
		return ms / 1000, nil
	default:
		return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00"), nil
	}
}

// parseScopes reads an array of strings; any other element is a fault.
func parseScopes(raw json.RawMessage) ([]string, error) {
	if kind := jsonKind(raw); kind != "array" {
		return nil, fmt.Errorf("want an array of strings, got %s", kind)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, errors.New("want an array of strings")
	}
	scopes := make([]string, len(elems))
	for i, e := range elems {
		if kind := jsonKind(e); kind != "string" || json.Unmarshal(e, &scopes[i]) != nil {
			return nil, fmt.Errorf("element %d: want a string, got %s", i, kind)
		}
	}
	return scopes, nil
}

// Merge is the read-modify-write of a store that holds the document: old
// is what the store holds now (nil when it holds nothing yet; anything
// else, even empty, must parse), and the result is old with c written under
// key and every other key kept as it was. Merge refuses to overwrite what
// does not parse: a file or item the user can fix must not be replaced by
// one that holds only the credential. It never quotes the old content.
func Merge(old []byte, key string, c sdk.Credential) ([]byte, error) {
	doc := &Document{}
	if old != nil {
		parsed, _, err := Parse(old, key)
		if err != nil && !errors.Is(err, ErrNoCredential) {
			return nil, fmt.Errorf("refusing to overwrite a credentials document that does not parse (%v); fix or remove it", err)
		}
		doc = parsed
	}
	return doc.Encode(key, c)
}

// Encode returns the document with c written under key: the owned fields
// set, metadata as string fields, every other key kept.
func (d *Document) Encode(key string, c sdk.Credential) ([]byte, error) {
	inner := append(object(nil), d.inner...)
	setJSON := func(field string, v any) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		inner.set(field, raw)
		return nil
	}
	if err := setJSON(fieldAccess, c.AccessToken); err != nil {
		return nil, err
	}
	if c.RefreshToken != "" {
		if err := setJSON(fieldRefresh, c.RefreshToken); err != nil {
			return nil, err
		}
	}
	exp, err := encodeExpiry(c.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", key, fieldExpires, err)
	}
	if err := setJSON(fieldExpires, exp); err != nil {
		return nil, err
	}
	if c.Scopes != nil {
		if err := setJSON(fieldScopes, c.Scopes); err != nil {
			return nil, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Metadata)) {
		switch k {
		case fieldAccess, fieldRefresh, fieldExpires, fieldScopes:
			return nil, fmt.Errorf("metadata key %q would overwrite a credential field", k)
		}
		if err := setJSON(k, c.Metadata[k]); err != nil {
			return nil, err
		}
	}
	innerRaw, err := inner.MarshalJSON()
	if err != nil {
		return nil, err
	}
	top := append(object(nil), d.top...)
	top.set(key, innerRaw)
	return top.MarshalJSON()
}
