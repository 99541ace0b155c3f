package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestCheckHandshake: each way a handshake line can be wrong is named,
// and a right one passes.
func TestCheckHandshake(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate whose length is not a multiple of 3, so that standard
	// base64 pads it.
	for len(der)%3 == 0 {
		tmpl.SerialNumber.Add(tmpl.SerialNumber, big.NewInt(1000))
		if der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key); err != nil {
			t.Fatal(err)
		}
	}
	raw, padded := base64.RawStdEncoding.EncodeToString(der), base64.StdEncoding.EncodeToString(der)
	tests := map[string]struct{ line, want string }{
		"right":            {"1|1|unix|/tmp/p.sock|grpc|" + raw, ""},
		"right, multiplex": {"1|1|unix|/tmp/p.sock|grpc|" + raw + "|true", ""},
		"too few fields":   {"1|1|unix|/tmp/p.sock", "4 |-separated fields"},
		"core protocol":    {"2|1|unix|/tmp/p.sock|grpc|" + raw, `core protocol "2"`},
		"app protocol":     {"1|2|unix|/tmp/p.sock|grpc|" + raw, `protocol version "2"; credhost speaks 1`},
		"network":          {"1|1|udp|/tmp/p.sock|grpc|" + raw, `network "udp"`},
		"netrpc":           {"1|1|unix|/tmp/p.sock|netrpc|" + raw, "grpc only"},
		"padded":           {"1|1|unix|/tmp/p.sock|grpc|" + padded, "padded base64"},
		"not base64":       {"1|1|unix|/tmp/p.sock|grpc|" + strings.Repeat("*", 60), "not base64"},
		"not a cert":       {"1|1|unix|/tmp/p.sock|grpc|" + base64.RawStdEncoding.EncodeToString([]byte(strings.Repeat("x", 60))), "not a DER-encoded X.509 certificate"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := checkHandshake(tc.line)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("checkHandshake: %q; want %q", got, tc.want)
			}
		})
	}
}
