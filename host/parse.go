package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/credhost/credhost/sdk"
)

// ParseConfig parses and validates one YAML configuration. source names it
// in errors (a path, or "embedded default"). ${VAR} and ${VAR:-default} in
// values are expanded with lookupEnv (nil: nothing is set). Every error is a
// *ConfigError wrapping ErrConfig, with the key and its line and column.
//
// Provider entries whose os: list does not name this operating system
// (runtime.GOOS) are checked like the others, then left out of the chain.
//
// A key the file leaves out keeps DefaultConfig's value; the checks across
// keys are New's too (see DefaultConfig).
func ParseConfig(data []byte, source string, lookupEnv func(string) (string, bool)) (*Config, error) {
	return parseConfig(data, source, lookupEnv, runtime.GOOS)
}

// parseConfig is ParseConfig for the operating system goos.
func parseConfig(data []byte, source string, lookupEnv func(string) (string, bool), goos string) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	p := &parser{source: source, lookupEnv: lookupEnv, goos: goos}
	return p.parse(data)
}

// parse is parseConfig's work, on a parser made for it.
func (p *parser) parse(data []byte) (*Config, error) {
	source := p.source
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	if err := p.literalNames(root); err != nil {
		return nil, err
	}
	if err := p.expand(root, false); err != nil {
		return nil, err
	}
	p.retypeProviderConfigs(root)
	if err := p.check(root, reflect.TypeOf(Config{}), ""); err != nil {
		return nil, err
	}
	// Decoded onto the defaults, a key the file leaves out keeps its own.
	cfg := DefaultConfig()
	if err := root.Decode(cfg); err != nil {
		return nil, p.errAt(root, "", err.Error())
	}
	cfg.Source = source
	if err := p.finish(root, cfg); err != nil {
		return nil, err
	}
	cfg.unexpand = p.unexpander()
	return cfg, nil
}

type parser struct {
	source    string
	lookupEnv func(string) (string, bool)
	// expanded holds, for every value ${VAR} changed, what the file says
	// and what it became; vars, for every variable read, ${NAME} and its
	// value: errors quote the file, never the environment.
	expanded, vars []expansion
	// changed holds the scalar nodes ${VAR} expansion changed (see
	// retypeProviderConfigs).
	changed map[*yaml.Node]bool
	goos    string // the operating system os: entries are matched against
}

// errAt is the one place a parse error is made: its message is passed
// through the unexpander, so whatever it quotes reads as the config file
// does (${SECRET}), never as the environment's value.
func (p *parser) errAt(n *yaml.Node, key, msg string) *ConfigError {
	e := &ConfigError{Source: p.source, Key: key, Msg: p.unexpander().apply(msg)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// yamlLine finds the line in yaml.v3's error for a file that is not YAML;
// compiled on first use, not at every start.
var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// document parses data into its single root mapping.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.errAt(nil, "", "the config is empty; want a mapping with version: 1 and providers")
		}
		e := p.errAt(nil, "", "not valid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "))
		if m := yamlLine().FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Column = 1
			e.Msg = "not valid YAML: " + m[2]
		}
		return nil, e
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, p.errAt(&extra, "", "more than one YAML document; want exactly one")
	} else if !errors.Is(err, io.EOF) {
		return nil, p.errAt(nil, "", "not valid YAML after the first document: "+strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, p.errAt(&doc, "", "the config is empty; want a mapping with version: 1 and providers")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errAt(root, "", fmt.Sprintf("the config is %s; want a mapping with version: 1 and providers", kindName(root)))
	}
	return root, nil
}

// expand replaces ${VAR} and ${VAR:-default} in every scalar value (never
// in keys); $$ is a literal $.
func (p *parser) expand(n *yaml.Node, isKey bool) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if isKey || !strings.Contains(n.Value, "$") {
			return nil
		}
		v, err := expandVars(n.Value, p.lookup)
		if err != nil {
			return p.errAt(n, "", err.Error())
		}
		if v != n.Value {
			p.expanded = append(p.expanded, expansion{raw: n.Value, value: v})
			if p.changed == nil {
				p.changed = map[*yaml.Node]bool{}
			}
			p.changed[n] = true
		}
		n.Value = v
	case yaml.MappingNode:
		for i, c := range n.Content {
			if err := p.expand(c, i%2 == 0); err != nil {
				return err
			}
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			if err := p.expand(c, false); err != nil {
				return err
			}
		}
	case yaml.AliasNode:
		return p.errAt(n, "", "YAML aliases are not supported in credhost config")
	}
	return nil
}

// retypeProviderConfigs gives every value ${VAR} expansion changed inside a
// provider's config: block the YAML type it would have had written
// literally: YAML typed the scalar "${X:-true}" as a string before it was
// expanded, and the plugin would get "true", not true. A number becomes a
// number, true/false a boolean, anything else stays a string. Quoting the
// value in the file (or an explicit tag) keeps it a string, as it would
// literally; so does a value that expands to nothing, rather than a null.
// The other keys are typed by credhost's own fields, which read a string
// as what they need.
func (p *parser) retypeProviderConfigs(root *yaml.Node) {
	list := child(root, "providers")
	if list == nil || list.Kind != yaml.SequenceNode || len(p.changed) == 0 {
		return
	}
	for _, entry := range list.Content {
		if cfg := child(entry, "config"); cfg != nil {
			p.retype(cfg)
		}
	}
}

func (p *parser) retype(n *yaml.Node) {
	switch n.Kind {
	case yaml.ScalarNode:
		const quoted = yaml.TaggedStyle | yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
		if p.changed[n] && n.Style&quoted == 0 && n.Value != "" {
			n.Tag = (&yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}).ShortTag()
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			p.retype(n.Content[i])
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			p.retype(c)
		}
	}
}

// literalNames refuses a $ in a provider's name, before expansion: a name
// is printed in every message, status row and log line and is a label of
// the daemon's metrics, so it must be the config file's own text, never a
// value from the environment (which may be a secret).
func (p *parser) literalNames(root *yaml.Node) error {
	providers := child(root, "providers")
	if providers == nil || providers.Kind != yaml.SequenceNode {
		return nil // check reports it
	}
	for i, pr := range providers.Content {
		if n := child(pr, "name"); n != nil && n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "$") {
			return p.errAt(n, fmt.Sprintf("providers[%d].name", i), fmt.Sprintf("%q: write the name literally; ${VAR} is not expanded in names, which every message, status row and metric shows", n.Value))
		}
	}
	return nil
}

// lookup reads a variable for expansion and remembers its value.
func (p *parser) lookup(name string) (string, bool) {
	v, ok := p.lookupEnv(name)
	if ok && v != "" {
		p.vars = append(p.vars, expansion{raw: "${" + name + "}", value: v})
	}
	return v, ok
}

// unexpander rewrites messages: a whole value back to the file's text
// first, then any variable's value left to ${NAME}.
func (p *parser) unexpander() unexpander {
	return newUnexpander(append(slices.Clone(p.expanded), p.vars...))
}

// expandVars expands one value.
func expandVars(s string, lookupEnv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !isEnvName(name) {
			return "", fmt.Errorf("${%s}: %q is not an environment variable name (want ${NAME} or ${NAME:-default})", expr, name)
		}
		if strings.Contains(def, "${") {
			return "", fmt.Errorf("${%s}: nested ${ in a default is not supported", expr)
		}
		v, ok := lookupEnv(name)
		if hasDef && (!ok || v == "") {
			v = def
		}
		b.WriteString(v)
		i += 2 + end
	}
	return b.String(), nil
}

var durationType = reflect.TypeOf(Duration(0))

// check walks n against the Go type t and reports the first unknown key or
// wrong kind of node, with its dotted path and position.
func (p *parser) check(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // absent value: the default applies
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			return p.errAt(n, path, fmt.Sprintf("want a duration such as 5m or 300 (seconds), got %s", kindName(n)))
		}
		if _, err := sdk.ParseDuration(n.Value); err != nil {
			return p.errAt(n, path, err.Error())
		}
		return nil
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return p.errAt(n, path, fmt.Sprintf("want a mapping, got %s", kindName(n)))
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				return p.errAt(k, key, fmt.Sprintf("unknown key %q; known keys here: %s", k.Value, strings.Join(sortedKeys(fields), ", ")))
			}
			if seen[k.Value] {
				return p.errAt(k, key, "duplicate key")
			}
			seen[k.Value] = true
			if err := p.check(v, f.Type, key); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return p.errAt(n, path, fmt.Sprintf("want a list, got %s", kindName(n)))
		}
		for i, c := range n.Content {
			if c.Kind == yaml.ScalarNode && c.Tag == "!!null" {
				// yaml.v3 would drop it, shifting every later entry's index
				// and position.
				return p.errAt(c, fmt.Sprintf("%s[%d]", path, i), "empty entry")
			}
			if err := p.check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return p.errAt(n, path, fmt.Sprintf("want a mapping, got %s", kindName(n)))
		}
		if err := p.checkFree(n, path); err != nil {
			return err
		}
		var m map[string]any
		return p.decodeAt(n, &m, path)
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			return p.errAt(n, path, fmt.Sprintf("want a string, got %s", kindName(n)))
		}
		if n.Tag == "!!str" {
			return nil // a string decodes as itself; only other tags can fail
		}
		var s string
		return p.decodeAt(n, &s, path)
	case t.Kind() == reflect.Int:
		var v int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
			return p.errAt(n, path, fmt.Sprintf("want a whole number, got %s %q", kindName(n), n.Value))
		}
		return nil
	}
	return p.errAt(n, path, "unsupported config type "+t.String())
}

// decodeAt decodes n into v, reporting a failure (an invalid !!binary, say)
// at n rather than as the decoder's message for the whole document.
func (p *parser) decodeAt(n *yaml.Node, v any, path string) error {
	if err := n.Decode(v); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
		}
		return p.errAt(n, path, "cannot read the value: "+msg)
	}
	return nil
}

// checkFree checks a free-form block (a provider's config:): any keys, but
// they must be strings, so the block encodes to a JSON object.
func (p *parser) checkFree(n *yaml.Node, path string) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
				return p.errAt(k, path, fmt.Sprintf("key %q is not a string; quote it", k.Value))
			}
			if err := p.checkFree(n.Content[i+1], join(path, k.Value)); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := p.checkFree(c, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if n.Tag == "!!binary" || n.Tag == "!!timestamp" {
			return p.errAt(n, path, fmt.Sprintf("%s values are not supported; quote it to make it a string", n.Tag))
		}
	default:
		return p.errAt(n, path, "unsupported YAML node "+kindName(n))
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFieldsOf holds yamlFields' answer per struct type: the config's
// types are walked once per provider and per file, and never change.
var yamlFieldsOf sync.Map // reflect.Type -> map[string]reflect.StructField

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := yamlFieldsOf.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	yamlFieldsOf.Store(t, out)
	return out
}

func sortedKeys(m map[string]reflect.StructField) []string {
	return slices.Sorted(maps.Keys(m))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.Tag {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "nothing"
	}
	return "a scalar"
}

// child returns the value node of key in mapping n, or nil.
func child(n *yaml.Node, keys ...string) *yaml.Node {
	for _, key := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil || (next.Kind == yaml.ScalarNode && next.Tag == "!!null") {
			return nil
		}
		n = next
	}
	return n
}

// keyNode returns the key node of key in mapping n (for positions), or n.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return n
}

// finish checks what only a file can get wrong, then makes the checks New
// makes too (validate), pointing each problem at its place in the file.
func (p *parser) finish(root *yaml.Node, cfg *Config) error {
	if child(root, "version") == nil {
		return p.errAt(root, "version", "missing; want version: 1")
	}
	if list := child(root, "providers"); list != nil {
		for i := range cfg.Providers {
			cfg.Providers[i].Line, cfg.Providers[i].Column = list.Content[i].Line, list.Content[i].Column
		}
	}
	if pr := cfg.validate(validator{goos: p.goos, command: p.commandPath}); pr != nil {
		return p.errAt(p.place(root, pr), pr.key, pr.msg)
	}
	return nil
}

// place finds the node a problem points at: the value at its path, or the
// nearest enclosing one that is set; with atKey, the key node instead.
func (p *parser) place(root *yaml.Node, pr *problem) *yaml.Node {
	path := strings.FieldsFunc(strings.ReplaceAll(pr.where(), "[", ".["), func(r rune) bool { return r == '.' })
	last := ""
	if pr.atKey && len(path) > 0 {
		path, last = path[:len(path)-1], path[len(path)-1]
	}
	n := root
	for _, seg := range path {
		var next *yaml.Node
		if idx, ok := strings.CutPrefix(seg, "["); ok {
			i, _ := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			if n.Kind == yaml.SequenceNode && i < len(n.Content) {
				next = n.Content[i]
			}
		} else {
			next = child(n, seg)
		}
		if next == nil {
			return n
		}
		n = next
	}
	if last != "" {
		return keyNode(n, last)
	}
	return n
}

// commandPath makes an external plugin's command absolute: a leading ~ is
// the home directory, and a relative path is taken from the config file's
// directory. Never from the working directory: Claude Code runs its
// apiKeyHelper inside the user's project, which may ship a ./plugin. The
// embedded default has no directory, so it takes no relative command.
func (p *parser) commandPath(cmd string) (string, error) {
	if cmd == "~" || strings.HasPrefix(cmd, "~/") || (filepath.Separator == '\\' && strings.HasPrefix(cmd, `~\`)) {
		home := homeDir(p.lookupEnv)
		if home == "" {
			return "", fmt.Errorf("cannot expand ~ in %q: no home directory", cmd)
		}
		cmd = filepath.Join(home, cmd[1:])
	} else if strings.HasPrefix(cmd, "~") {
		user, _, _ := strings.Cut(cmd, "/")
		return "", fmt.Errorf("%q: %s names another user's home, which credhost does not look up; give the path in full", cmd, user)
	}
	if filepath.IsAbs(cmd) {
		return filepath.Clean(cmd), nil
	}
	if p.source == DefaultSource || p.source == "" {
		return "", fmt.Errorf("%q is relative; the %s has no directory to resolve it against: give an absolute path", cmd, DefaultSource)
	}
	dir, err := filepath.Abs(filepath.Dir(p.source))
	if err != nil {
		return "", fmt.Errorf("%q is relative and the config file's directory is unknown: %v", cmd, err)
	}
	return filepath.Join(dir, cmd), nil
}

// homeDir is the home directory as the config's environment says ($HOME,
// or %USERPROFILE% on Windows), else the system's idea of it; "" if none.
func homeDir(lookupEnv func(string) (string, bool)) string {
	for _, v := range []string{"HOME", "USERPROFILE"} {
		if h, ok := lookupEnv(v); ok && h != "" {
			return h
		}
	}
	home, _ := os.UserHomeDir()
	return home
}
