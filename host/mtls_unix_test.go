//go:build unix

package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestEachPluginGetsAHostCertificateOfItsOwn: every plugin process gets
// a host certificate of its own, on a key of its own (plugins that
// trusted one shared host certificate would each accept the host's
// connection meant for another), an ECDSA P-256 one (go-plugin's AutoMTLS
// made a P-521 key per start, several milliseconds of CPU each), and
// nothing of its private key: the environment carries the certificate
// alone.
func TestEachPluginGetsAHostCertificateOfItsOwn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	envs := []string{filepath.Join(dir, "env0"), filepath.Join(dir, "env1")}
	h, _ := newLevelHost(t, rawConfig("env="+envs[0], "env="+envs[1]+",found"), hclog.Warn)
	res, err := h.Token(context.Background())
	if err != nil || res.Credential.AccessToken != "raw-token-A" {
		t.Fatalf("Token: %v, %v", res, err)
	}
	h.Close()
	var certs, keys []string
	for _, path := range envs {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		env := string(raw)
		if strings.Contains(env, "PRIVATE KEY") {
			t.Errorf("%s: a private key reached the plugin's environment", filepath.Base(path))
		}
		cert := ""
		for _, kv := range strings.Split(env, "\x00") {
			if v, ok := strings.CutPrefix(kv, "PLUGIN_CLIENT_CERT="); ok {
				cert = v
			}
		}
		// The variable holds a PEM certificate and nothing else.
		block, rest := pem.Decode([]byte(cert))
		if block == nil || block.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
			t.Fatalf("%s: PLUGIN_CLIENT_CERT is not one PEM certificate: %q", filepath.Base(path), cert)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("host certificate key %T %v; want ECDSA P-256", c.PublicKey, c.PublicKeyAlgorithm)
		}
		certs, keys = append(certs, cert), append(keys, string(c.RawSubjectPublicKeyInfo))
	}
	if certs[0] == certs[1] || keys[0] == keys[1] {
		t.Errorf("the two plugins of one host got the same host certificate or key; want one of its own each")
	}
}

// TestHostRefusesAPluginServingAnotherCertificate: the host trusts exactly
// the certificate a plugin printed in its handshake; a plugin that serves
// TLS with another one yields nothing.
func TestHostRefusesAPluginServingAnotherCertificate(t *testing.T) {
	t.Parallel()
	h, _ := newLevelHost(t, rawConfig("othercert,found"), hclog.Warn)
	res, err := h.Token(context.Background())
	if err == nil {
		t.Fatalf("Token: %v; want the plugin refused", res.Credential)
	}
	st := h.Status(context.Background())
	if st[0].State != StateError {
		t.Errorf("status %+v; want an error", st[0])
	}
}
