package file

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

// errNotObject says the document or value is not a JSON object.
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
	if _, err := dec.Token(); err == nil {
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

// document is a parsed credentials file.
type document struct {
	top   object
	inner object // the credential object; nil when the key is absent
}

// errNoCredential is the not-found case of parseStore.
var errNoCredential = errors.New("no credential")

// parseStore parses a credentials file and the credential under key. It
// returns errNoCredential (with the document) when the file holds no
// credential under key; other errors name the field, never its value.
func parseStore(data []byte, key string) (*document, sdk.Credential, error) {
	top, err := parseObject(data)
	if err != nil {
		if errors.Is(err, errNotObject) {
			return nil, sdk.Credential{}, errors.New("the file is not a JSON object")
		}
		return nil, sdk.Credential{}, err
	}
	doc := &document{top: top}
	raw, ok := top.get(key)
	if !ok || isNull(raw) {
		return doc, sdk.Credential{}, fmt.Errorf("%w: no %q object", errNoCredential, key)
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
		if err := json.Unmarshal(raw, &s); err != nil {
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
		if err := json.Unmarshal(raw, &c.Scopes); err != nil {
			return c, fmt.Errorf("%s.%s: want an array of strings, got %s", key, fieldScopes, jsonKind(raw))
		}
	}
	for _, m := range o {
		switch m.key {
		case fieldAccess, fieldRefresh, fieldExpires, fieldScopes:
			continue
		}
		var s string
		if json.Unmarshal(m.raw, &s) == nil {
			if c.Metadata == nil {
				c.Metadata = map[string]string{}
			}
			c.Metadata[m.key] = s
		}
	}
	if c.AccessToken == "" {
		return c, fmt.Errorf("%w: %s has no %s", errNoCredential, key, fieldAccess)
	}
	return c, nil
}

// parseExpiry reads expiresAt: a number (epoch ms above 1e12, else s), a
// string (RFC 3339 or such a number), or null.
func parseExpiry(raw json.RawMessage) (time.Time, error) {
	switch jsonKind(raw) {
	case "null":
		return time.Time{}, nil
	case "number":
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
		if err != nil || math.IsInf(f, 0) {
			return time.Time{}, errors.New("not a usable number")
		}
		return sdk.ExpiryFromEpoch(f)
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, errors.New("malformed string")
		}
		return sdk.ParseExpiry(s)
	}
	return time.Time{}, fmt.Errorf("want epoch milliseconds or an RFC 3339 string, got %s", jsonKind(raw))
}

// encode returns the document with c written under key: the owned fields
// set, metadata as string fields, every other key kept.
func (d *document) encode(key string, c sdk.Credential) ([]byte, error) {
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
	var exp any
	if !c.ExpiresAt.IsZero() {
		exp = c.ExpiresAt.UnixMilli()
		if ms := c.ExpiresAt.UnixMilli(); ms <= 1e12 {
			// Before September 2001 a millisecond count would read back as
			// seconds (values above 1e12 are milliseconds): write seconds,
			// so the expiry survives the round trip. Such a token has long
			// expired either way.
			exp = json.Number(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64))
		}
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
