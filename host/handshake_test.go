package host

import (
	"strings"
	"testing"
)

// TestHandshakeLineShape: only go-plugin's handshake line passes the
// stdout filter, with an address of at most maxHandshakeAddr bytes;
// anything else a plugin prints is counted, never passed on.
func TestHandshakeLineShape(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		line string
		want bool
	}{
		"unix socket":              {"1|1|unix|/tmp/plugin123/plugin456|grpc|\n", true},
		"tcp with certificate":     {"1|1|tcp|127.0.0.1:1234|grpc|MIIBAAAA+/=\n", true},
		"with multiplexing flag":   {"1|1|unix|/tmp/p|grpc||true\n", true},
		"address at the bound":     {"1|1|unix|/" + strings.Repeat("a", maxHandshakeAddr-1) + "|grpc|\n", true},
		"address over the bound":   {"1|1|unix|/" + strings.Repeat("a", maxHandshakeAddr) + "|grpc|\n", false},
		"a token printed":          {"sk-ant-oat01-secret\n", false},
		"control character":        {"1|1|unix|/tmp/\x1b[2J|grpc|\n", false},
		"unknown network":          {"1|1|udp|/tmp/p|grpc|\n", false},
		"text after the handshake": {"1|1|unix|/tmp/p|grpc| sk-ant-oat01-secret\n", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := isHandshake([]byte(tc.line)); got != tc.want {
				t.Errorf("isHandshake(%q) = %v; want %v", tc.line, got, tc.want)
			}
		})
	}
}
