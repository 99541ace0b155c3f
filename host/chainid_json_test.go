package host

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"
)

// trickyStrings are values whose JSON quoting has rules of its own: HTML
// characters, control characters with and without short escapes, the
// JavaScript line separators, invalid UTF-8, and plain text around them.
var trickyStrings = []string{
	"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>",
	"\x00\x01\x07\b\f\n\r\t\x1f\x7f", "line\u2028para\u2029end", "caf\u00e9 \u65e5\u672c \U0001F600",
	"bad \xff utf8 \xe2\x82", "\xed\xa0\x80 surrogate", "${NOT_EXPANDED}",
}

// legacyChainJSON is what ChainID hashed before it wrote the JSON by hand:
// two values through encoding/json's Encoder.
func legacyChainJSON(t *testing.T, cfg *Config, env []envValue) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(chainConfig(cfg)); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if err := enc.Encode(env); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return buf.Bytes()
}

// fillConfig sets every exported field of the value v points at, however
// deep, to something that is not its zero value, so that a field the
// hand-written JSON leaves out shows as a difference. A field of a kind it
// does not know fails the test: teach it (and appendConfigJSON) the kind.
func fillConfig(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	*n++
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillConfig(t, v.Field(i), n)
			}
		}
	case reflect.String:
		v.SetString(trickyStrings[*n%len(trickyStrings)] + "-" + v.Type().Name())
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n) * int64(time.Second))
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			v.Set(reflect.ValueOf(append([]string{}, trickyStrings...)).Convert(v.Type()))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillConfig(t, s.Index(i), n)
		}
		v.Set(s)
	case reflect.Map:
		if v.Type() != reflect.TypeFor[map[string]any]() {
			t.Fatalf("fillConfig: a config field of type %s: teach fillConfig and appendConfigJSON", v.Type())
		}
		v.Set(reflect.ValueOf(configBlock()))
	default:
		t.Fatalf("fillConfig: a config field of kind %s (%s): teach fillConfig and appendConfigJSON", v.Kind(), v.Type())
	}
}

// configBlock is a provider's config block with every kind YAML gives and
// a few it does not.
func configBlock() map[string]any {
	m := map[string]any{
		"int": 42, "neg": -7, "float": 1.5, "big": 1e21, "small": 1e-7, "bool": true, "no": false, "nil": nil,
		"list":   []any{"a", 1, 2.25, true, nil, []any{}, map[string]any{}},
		"nested": map[string]any{"z": "last", "a": map[string]any{"deep": []any{"x"}}},
		"nilmap": map[string]any(nil), "nillist": []any(nil),
		"strings": []string{"typed", "<&>"}, "int64": int64(1) << 60, "uint": uint(3),
		"time": time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC), "dur": 90 * time.Second,
	}
	for i, s := range trickyStrings {
		m[s] = s
		m["k"+string(rune('a'+i))] = s
	}
	return m
}

// The chain ID hashes byte for byte what encoding/json wrote before it was
// written by hand, so a client and a daemon of either version agree on
// it: for the embedded default, the example config, a chain of tests, and
// a config with every field set to values JSON quotes in its own ways.
func TestChainIDHashesWhatEncodingJSONWrote(t *testing.T) {
	t.Parallel()
	noEnv := func(string) (string, bool) { return "", false }
	configs := map[string]func(t *testing.T) *Config{
		"embedded default": func(t *testing.T) *Config {
			cfg, err := parseDefault(noEnv, "linux")
			if err != nil {
				t.Fatal(err)
			}
			return cfg
		},
		"embedded default, macOS": func(t *testing.T) *Config {
			cfg, err := parseDefault(noEnv, "darwin")
			if err != nil {
				t.Fatal(err)
			}
			return cfg
		},
		"config.example.yaml": func(t *testing.T) *Config {
			data, err := os.ReadFile("../config.example.yaml")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := ParseConfig(data, "config.example.yaml", noEnv)
			if err != nil {
				t.Fatal(err)
			}
			return cfg
		},
		"a chain of env, file and an external plugin": func(t *testing.T) *Config {
			cfg, err := ParseConfig([]byte(chainIDConfig), "test.yaml", noEnv)
			if err != nil {
				t.Fatal(err)
			}
			return cfg
		},
		"every field set": func(t *testing.T) *Config {
			var cfg Config
			n := 0
			fillConfig(t, reflect.ValueOf(&cfg).Elem(), &n)
			return &cfg
		},
		"no providers": func(t *testing.T) *Config { return &Config{Version: 1} },
	}
	var env []envValue
	for i, s := range trickyStrings {
		env = append(env, envValue{Name: "VAR_" + s, Set: i%2 == 0, Value: s})
	}
	for name, load := range configs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := load(t)
			for _, env := range [][]envValue{env, {}, nil} {
				want := legacyChainJSON(t, cfg, env)
				if got := appendChainJSON(nil, cfg, env); !bytes.Equal(got, want) {
					t.Errorf("appendChainJSON wrote\n%s\nencoding/json wrote\n%s", got, want)
				}
			}
		})
	}
}

// A config block JSON cannot encode is left out of the hash, as the
// Encoder left it out (New refuses such a block, so no host has one).
func TestChainJSONLeavesOutAConfigJSONCannotEncode(t *testing.T) {
	t.Parallel()
	cfg := &Config{Version: 1, Providers: []ProviderConfig{{Name: "p", Config: map[string]any{"f": func() {}}}}}
	env := []envValue{{Name: "A", Set: true, Value: "x"}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if enc.Encode(chainConfig(cfg)) == nil {
		t.Fatal("encoding/json encoded a func")
	}
	_ = enc.Encode(env)
	if got := appendChainJSON(nil, cfg, env); !bytes.Equal(got, buf.Bytes()) {
		t.Errorf("appendChainJSON wrote\n%s\nencoding/json wrote\n%s", got, buf.Bytes())
	}
}

// appendJSONString quotes any string as encoding/json does.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s; encoding/json: %s", s, got, want)
		}
	})
}
