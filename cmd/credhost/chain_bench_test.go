package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkColdProcessChain times a cold `credhost token` whose providers
// are all plugin processes, next to its floor in the same run:
//
//	plugins/1        one provider (the file holding the token): one
//	                 plugin's start, the floor
//	plugins/4-last   four providers, three empty env ones before the file:
//	                 the walk needs all four plugins
//	plugins/4-first  the file first, then three env providers: the walk
//	                 needs the first; those started ahead are ended
//	plugins/16-last  fifteen empty env providers before the file: more
//	                 plugins than the parallel start window, so they start
//	                 in waves; (16-last - 1) / 15 is each one's marginal cost
//	plugins/16-first the file first, then fifteen env providers
//	spawn            the floor of a plugin start without a host: the
//	                 credhost binary run as `plugin serve file`, as the
//	                 host runs it (the cookie, a host certificate, a socket
//	                 directory), until its handshake line; then killed
//
// Started one after another, four plugins cost about four starts; started
// together, about one (the target is 1.5×). Each start is mostly CPU, so
// on a machine with fewer cores than plugins the starts share them:
// cpu-ms/op (the host's and its plugins' CPU time per run) over the
// cores bounds how close to one start four can come.
// Run with: go test -run '^$' -bench ColdProcessChain -count 6 ./cmd/credhost | benchstat -
func BenchmarkColdProcessChain(b *testing.B) {
	home := b.TempDir()
	creds := filepath.Join(home, ".credentials.json")
	if err := os.WriteFile(creds, []byte(validCredentials(time.Now().Add(time.Hour))), 0o600); err != nil {
		b.Fatal(err)
	}
	file := "  - name: file\n    plugin: file\n    config: {path: " + creds + ", key: claudeAiOauth}\n"
	env := func(i string) string {
		return "  - name: env" + i + "\n    plugin: env\n    config: {var: CREDHOST_BENCH_UNSET_" + i + "}\n"
	}
	envs := func(n int) string {
		var s strings.Builder
		for i := range n {
			s.WriteString(env(strconv.Itoa(i + 1)))
		}
		return s.String()
	}
	head := "version: 1\nplugins:\n  builtin: process\nproviders:\n"
	chains := []struct{ name, providers string }{
		{"plugins/1", file},
		{"plugins/4-last", env("1") + env("2") + env("3") + file},
		{"plugins/4-first", file + env("1") + env("2") + env("3")},
		{"plugins/16-last", envs(15) + file},
		{"plugins/16-first", file + envs(15)},
	}
	b.Run("spawn", func(b *testing.B) {
		env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
			"CREDHOST_PLUGIN=5d0c8e4b6f1a4d7c9e2b3a8f0c6d1e57", "PLUGIN_PROTOCOL_VERSIONS=1",
			"PLUGIN_UNIX_SOCKET_DIR=" + home, "PLUGIN_CLIENT_CERT=" + benchHostCert(b)}
		var cpu time.Duration
		for b.Loop() {
			cmd := exec.Command(credhostBin, "plugin", "serve", "file")
			cmd.Env = env
			out, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "1|1|unix|") {
				b.Fatalf("handshake line %q: %v", line, err)
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		reportCPU(b, cpu)
	})
	for _, c := range chains {
		config := filepath.Join(home, strings.ReplaceAll(c.name, "/", "-")+".yaml")
		if err := os.WriteFile(config, []byte(head+c.providers), 0o600); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			var cpu time.Duration
			for b.Loop() {
				cmd := exec.Command(credhostBin, "--config", config, "token")
				cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", c.name, err, out)
				}
				// The host's time includes its plugins': it waits for
				// them.
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU reports the CPU time (user and system) of one run: on a
// machine shared with other work, what a cold start costs is steadier
// than how long it takes, and with fewer cores than plugins it is what
// bounds a parallel start.
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// benchHostCert returns a self-signed P-256 certificate (PEM) for
// localhost, as a host gives its plugins in PLUGIN_CLIENT_CERT.
func benchHostCert(b *testing.B) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
