package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// decodeStrict decodes a JSON object into v, rejecting unknown keys and
// trailing data, and rewrites encoding/json's messages to name the key as
// the config spells it.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Type == durationType:
			return fmt.Errorf("key %q: %s", configKey(reflect.TypeOf(v), typeErr.Field), typeErr.Value)
		case errors.As(err, &typeErr):
			return fmt.Errorf("key %q: want %s, got %s", configKey(reflect.TypeOf(v), typeErr.Field), typeErr.Type, typeErr.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("unknown key %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return err
		}
	}
	if dec.More() {
		return errors.New("trailing data after the config object")
	}
	return nil
}

// configKey turns encoding/json's path of a field in t ("Options.timeout")
// into the key as the config spells it ("timeout"): the Go name of an
// embedded struct, whose keys json promotes, is no part of the config.
func configKey(t reflect.Type, field string) string {
	var keys []string
	for _, seg := range strings.Split(field, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			keys, t = append(keys, seg), nil
			continue
		}
		f, ok := t.FieldByName(seg)
		if ok && f.Anonymous && f.Tag.Get("json") == "" {
			t = f.Type // promoted: its keys are the parent's
			continue
		}
		keys, t = append(keys, seg), fieldByKey(t, seg)
	}
	return strings.Join(keys, ".")
}

// fieldByKey is the type of t's field whose JSON key is key, or nil.
func fieldByKey(t reflect.Type, key string) reflect.Type {
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return f.Type
		}
	}
	return nil
}
