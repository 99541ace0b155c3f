package plugin

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
)

// clientCertEnv carries the host's TLS certificate (PEM) to a plugin
// process: go-plugin's name, which plugins in other languages read too.
const clientCertEnv = "PLUGIN_CLIENT_CERT"

// newIdentity makes an ECDSA P-256 key pair and a self-signed certificate
// for the name localhost, usable by either end of a plugin connection,
// shaped as go-plugin's own (which every plugin and host accepts) but on
// P-256: go-plugin's P-521 costs each start several milliseconds of CPU on
// both sides (key generation, the certificate's signature, and the TLS
// handshake's signatures and verifications), P-256 a tenth of one.
func newIdentity() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate a TLS key: %w", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate a certificate serial number: %w", err)
	}
	now := time.Now()
	template := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"credhost"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SerialNumber:          sn,
		NotBefore:             now.Add(-30 * time.Second),
		// A host may live as long as a daemon does; a plugin process
		// serves one host. Neither checks more than this certificate.
		NotAfter: now.Add(10 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("make a TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse the TLS certificate just made: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ClientTLS is a host's TLS identity toward one plugin process: a P-256
// key pair and self-signed certificate, made for that start, in place of
// go-plugin's AutoMTLS, which makes a P-521 key (a hundred times the CPU
// of P-256, on both ends). The private key never leaves the process: the
// plugin gets only the certificate (PLUGIN_CLIENT_CERT), and trusts only
// it; the host trusts only the certificate the plugin prints in its
// handshake. Use one per plugin start: plugins that shared a host
// certificate would each accept a connection meant for another (a plugin
// that printed another's address and certificate as its own could pass
// the host's calls on to it). Safe for concurrent use.
type ClientTLS struct {
	cert tls.Certificate
	env  string
}

// NewClientTLS makes a host's TLS identity (see ClientTLS).
func NewClientTLS() (*ClientTLS, error) {
	cert, err := newIdentity()
	if err != nil {
		return nil, err
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	return &ClientTLS{cert: cert, env: clientCertEnv + "=" + string(block)}, nil
}

// Apply makes cc (from ClientConfig) use this identity for mutual TLS in
// place of AutoMTLS: a TLS config of cc's own (go-plugin adds the plugin's
// certificate to it, so it is never shared between clients) that presents
// this certificate, requires TLS 1.2 and verifies the plugin's
// certificate for the name localhost. It returns the variable
// (PLUGIN_CLIENT_CERT=PEM) the plugin process must get in its
// environment: added to cc.Cmd's when cc has one; a RunnerFunc adds it
// itself.
func (c *ClientTLS) Apply(cc *goplugin.ClientConfig) string {
	cc.AutoMTLS = false
	cc.TLSConfig = &tls.Config{
		Certificates: []tls.Certificate{c.cert},
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
		// Until the plugin's handshake names its certificate, no server
		// is trusted: go-plugin puts that one certificate here.
		RootCAs: x509.NewCertPool(),
	}
	if cc.Cmd != nil {
		cc.Cmd.Env = append(cc.Cmd.Env, c.env)
	}
	return c.env
}

// serverTLS returns the TLS config a plugin serves with, given the host's
// certificate (PEM, from PLUGIN_CLIENT_CERT): a fresh P-256 certificate of
// its own, and the host's as the only client certificate it accepts,
// required on every connection. der is the plugin's certificate, for the
// handshake line.
func serverTLS(clientPEM string) (conf *tls.Config, der []byte, err error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(clientPEM)) {
		return nil, nil, errors.New("PLUGIN_CLIENT_CERT holds no PEM certificate")
	}
	cert, err := newIdentity()
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, cert.Certificate[0], nil
}

// withCertInHandshake runs serve, which prints go-plugin's handshake line
// on os.Stdout, and puts der (the certificate of a TLSProvider, which
// go-plugin leaves out of the line) into the line's sixth field, base64
// without padding, as go-plugin's AutoMTLS prints it. os.Stdout is a pipe
// read here until the line is through; go-plugin itself then points
// os.Stdout at its stdio stream.
func withCertInHandshake(der []byte, serve func()) error {
	stdout := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pipe for the plugin handshake: %w", err)
	}
	os.Stdout = w
	// go-plugin points os.Stdout at its stdio stream once the line is
	// out; a Serve that ended before the line leaves it on the pipe.
	defer func() {
		if os.Stdout == w {
			os.Stdout = stdout
			w.Close()
		}
	}()
	go func() {
		defer r.Close()
		line, err := bufio.NewReader(r).ReadString('\n')
		// The line is through (or go-plugin ended before it): later
		// writes to this pipe fail, as nothing but the handshake may go
		// to stdout.
		w.Close()
		if err != nil && (err != io.EOF || line == "") {
			return
		}
		_, _ = io.WriteString(stdout, addCert(line, der))
		_ = stdout.Sync()
	}()
	serve()
	return nil
}

// addCert puts der, base64 without padding, as field 6 of the handshake
// line.
func addCert(line string, der []byte) string {
	body := strings.TrimRight(line, "\r\n")
	fields := strings.Split(body, "|")
	for len(fields) < 6 {
		fields = append(fields, "")
	}
	fields[5] = base64.RawStdEncoding.EncodeToString(der)
	return strings.Join(fields, "|") + "\n"
}
