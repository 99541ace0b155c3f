package plugin_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/credhost/credhost/sdk/plugin"
)

// hostIdentity returns a host's TLS identity: the certificate (with its
// key) it presents, and the variable that gives a plugin its certificate.
func hostIdentity(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	id, err := plugin.NewClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	cc := &goplugin.ClientConfig{AutoMTLS: true}
	env := id.Apply(cc)
	if cc.AutoMTLS || cc.TLSConfig == nil || len(cc.TLSConfig.Certificates) != 1 {
		t.Fatalf("Apply left AutoMTLS %v, TLS config %v", cc.AutoMTLS, cc.TLSConfig)
	}
	return cc.TLSConfig.Certificates[0], env
}

// TestServeRequiresTheHostsCertificate runs a plugin built on Serve as a
// host starts it (the cookie, the protocol versions, the host's
// certificate, a socket directory) and connects to it as its handshake
// line says: the line carries the plugin's certificate (field 6, base64
// without padding, ECDSA P-256 for localhost), and the plugin answers only
// a client presenting the host's certificate; a client with another
// certificate, or none, is refused, and a client that trusts another
// server certificate refuses the plugin.
func TestServeRequiresTheHostsCertificate(t *testing.T) {
	t.Parallel()
	hostCert, certEnv := hostIdentity(t)
	otherCert, _ := hostIdentity(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CREDHOST_SDKTEST_SERVE_PLUGIN=1",
		plugin.Handshake.MagicCookieKey+"="+plugin.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1", "PLUGIN_UNIX_SOCKET_DIR="+t.TempDir(), certEnv, tokenBytesEnv+"=8")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("handshake line: %q, %v", line, err)
	}
	fields := strings.Split(strings.TrimSuffix(line, "\n"), "|")
	if len(fields) != 6 || fields[0] != "1" || fields[1] != "1" || fields[2] != "unix" || fields[4] != "grpc" {
		t.Fatalf("handshake line %q", line)
	}
	der, err := base64.RawStdEncoding.DecodeString(fields[5])
	if err != nil {
		t.Fatalf("field 6 is not base64 without padding: %v", err)
	}
	pluginCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := pluginCert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("plugin certificate key %v; want ECDSA P-256", pluginCert.PublicKeyAlgorithm)
	}
	if err := pluginCert.VerifyHostname("localhost"); err != nil {
		t.Errorf("plugin certificate: %v", err)
	}
	trustPlugin := x509.NewCertPool()
	trustPlugin.AddCert(pluginCert)
	trustOther := x509.NewCertPool()
	trustOther.AddCert(otherCert.Leaf)

	tests := map[string]struct {
		certs []tls.Certificate
		roots *x509.CertPool
		ok    bool
	}{
		"the host's certificate":              {certs: []tls.Certificate{hostCert}, roots: trustPlugin, ok: true},
		"another certificate":                 {certs: []tls.Certificate{otherCert}, roots: trustPlugin},
		"no certificate":                      {roots: trustPlugin},
		"trusting another server certificate": {certs: []tls.Certificate{hostCert}, roots: trustOther},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			creds := credentials.NewTLS(&tls.Config{Certificates: tc.certs, RootCAs: tc.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12})
			conn, err := grpc.NewClient("unix:"+fields[3], grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
			switch {
			case tc.ok && (err != nil || res.Status != healthpb.HealthCheckResponse_SERVING):
				t.Errorf("health check: %v, %v; want SERVING", res, err)
			case !tc.ok && err == nil:
				t.Errorf("health check answered %v; want the connection refused", res)
			}
		})
	}
}

// TestServeRefusesAnUnreadableHostCertificate: a PLUGIN_CLIENT_CERT that
// holds no certificate ends the plugin before its handshake, saying so on
// stderr, rather than serving a TLS no host can reach.
func TestServeRefusesAnUnreadableHostCertificate(t *testing.T) {
	t.Parallel()
	// A plugin that serves anyway never exits: it is killed after a while.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), "CREDHOST_SDKTEST_SERVE_PLUGIN=1",
		plugin.Handshake.MagicCookieKey+"="+plugin.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1", "PLUGIN_UNIX_SOCKET_DIR="+t.TempDir(), "PLUGIN_CLIENT_CERT=not a certificate")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil || len(out) != 0 {
		t.Fatalf("plugin printed %q, exit %v; want no handshake and a failed exit", out, err)
	}
	if !strings.Contains(stderr.String(), "PLUGIN_CLIENT_CERT holds no PEM certificate") {
		t.Errorf("stderr %q; want it to name PLUGIN_CLIENT_CERT", stderr.String())
	}
}
