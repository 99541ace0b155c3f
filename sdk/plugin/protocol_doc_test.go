package plugin

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
)

// protocolDoc is the protocol document for plugin authors.
const protocolDoc = "../proto/PROTOCOL.md"

func readProtocolDoc(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

// TestProtocolDocMatchesTheHandshake: the cookie key and value, the
// protocol version and the variable names the document gives are the
// ones the code uses, so the two cannot drift apart.
func TestProtocolDocMatchesTheHandshake(t *testing.T) {
	t.Parallel()
	doc := readProtocolDoc(t)
	cookieRow := fmt.Sprintf("| `%s` | the magic cookie, `%s` |", Handshake.MagicCookieKey, Handshake.MagicCookieValue)
	cookieText := fmt.Sprintf("The cookie key is `%s`, its value\n`%s`.", Handshake.MagicCookieKey, Handshake.MagicCookieValue)
	for _, want := range []string{cookieRow, cookieText} {
		if !strings.Contains(doc, want) {
			t.Errorf("%s lacks %q", protocolDoc, want)
		}
	}
	m := regexp.MustCompile("Protocol version: `(\\d+)`").FindStringSubmatch(doc)
	if m == nil || m[1] != strconv.Itoa(protocolVersion) {
		t.Errorf("%s gives protocol version %v; the code speaks %d", protocolDoc, m, protocolVersion)
	}
	var versions []string
	for v := range pluginSets(nil) {
		versions = append(versions, strconv.Itoa(v))
	}
	slices.Sort(versions)
	if want := fmt.Sprintf("comma-separated: `%s` |", strings.Join(versions, ",")); !strings.Contains(doc, want) {
		t.Errorf("%s lacks the versions offered, %q", protocolDoc, want)
	}
	if want := "field 6): its DER bytes"; !strings.Contains(doc, want) {
		t.Errorf("%s lacks %q", protocolDoc, want)
	}
	if !strings.Contains(doc, fmt.Sprintf("| 1 | core protocol version: `%d`", goplugin.CoreProtocolVersion)) {
		t.Errorf("%s gives another core protocol version than go-plugin's %d", protocolDoc, goplugin.CoreProtocolVersion)
	}
	for _, name := range []string{Handshake.MagicCookieKey, "PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_CLIENT_CERT", goplugin.EnvUnixSocketDir, "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT", LogLevelEnv, OwnGroupEnv} {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("%s does not name the variable %s", protocolDoc, name)
		}
	}
	for _, want := range []string{"One gRPC message is at most 1 MiB", "cut\nto 1 KiB"} {
		if !strings.Contains(doc, want) {
			t.Errorf("%s lacks %q", protocolDoc, want)
		}
	}
	if maxMessageSize != 1<<20 || maxPluginText != 1<<10 {
		t.Errorf("the caps changed (message %d, text %d): update %s", maxMessageSize, maxPluginText, protocolDoc)
	}
}

// TestProtocolDocMatchesTheErrorCodes: the document's table of codes maps
// each sentinel to the code it travels as, and names every one; the hint
// and Retry-After details are the ones the code reads.
func TestProtocolDocMatchesTheErrorCodes(t *testing.T) {
	t.Parallel()
	doc := readProtocolDoc(t)
	row := regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\| .* \\| `(sdk\\.Err[A-Za-z]+)` \\|$")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		documented[m[2]] = m[1]
	}
	sentinelNames := map[string]string{
		"no credential found": "sdk.ErrNotFound", "operation not supported": "sdk.ErrUnsupported",
		"invalid provider config": "sdk.ErrInvalidConfig", "refresh token rejected": "sdk.ErrInvalidGrant",
	}
	if len(documented) != len(errorCodes) {
		t.Errorf("%s documents %d sentinel codes (%v); the code maps %d", protocolDoc, len(documented), documented, len(errorCodes))
	}
	for _, e := range errorCodes {
		name := sentinelNames[e.err.Error()]
		if name == "" {
			t.Errorf("sentinel %q has no name in this test: add it", e.err)
			continue
		}
		if got, want := documented[name], upperSnake(e.code); got != want {
			t.Errorf("%s: %s travels as %q; the code sends %s", protocolDoc, name, got, want)
		}
	}
	for _, want := range []string{
		"`google.rpc.RetryInfo` with `retry_delay`",
		fmt.Sprintf("`google.rpc.ErrorInfo` with domain `%s`, reason `%s` and\n  metadata key `%s`", hintDomain, hintReason, hintKey),
		"| `" + upperSnake(codes.DeadlineExceeded) + "`, `" + upperSnake(codes.Canceled) + "` |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("%s lacks %q", protocolDoc, want)
		}
	}
}

// upperSnake is a code's name as .proto files and other languages spell
// it: NotFound is NOT_FOUND (and Canceled, CANCELLED).
func upperSnake(c codes.Code) string {
	if c == codes.Canceled {
		return "CANCELLED"
	}
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}
