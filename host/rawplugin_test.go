package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawArg marks a re-execution of this test binary as a plugin written from
// sdk/proto/PROTOCOL.md alone, the way an author in another language
// writes one: no go-plugin, no sdk/plugin, no generated code (messages are
// encoded by hand with protowire). It serves only credhost's Provider
// service and grpc.health.v1: no go-plugin controller, stdio or broker.
// `host.test credhost-raw-plugin OPTIONS` (comma-separated):
//
//	found       Read returns the token raw-token-A
//	prefixed    Read answers NOT_FOUND "no credential found: nothing in the raw store"
//	badconfig   Configure answers INVALID_ARGUMENT "invalid provider config: key \"x\" is required"
//	echo        Configure answers INTERNAL quoting the config it got, and
//	            logs it on stderr (plain and JSON)
//	stderr      writes plain lines, a traceback and JSON lines on stderr
//	            before the handshake
//	badjson     writes JSON log lines of the wrong types on stderr
//	traceback   writes a Python traceback on stderr and exits 1, no handshake
//	nocert      serves plain TCP/unix without TLS and no certificate field
//	padded      sends its certificate as base64 with = padding
//	notls       handshake with a certificate, but serves without TLS
//	othercert   handshake with a certificate, but serves TLS with another
//	env=PATH    writes its environment, NUL-separated, to PATH
//	together=N:DIR  on SIGTERM, leaves a file named after its process ID
//	            in DIR and waits (up to 0.4 s) until N such files are
//	            there, then writes PID.all beside them if there were N,
//	            and exits: whether the host ended N plugins at once
//	pid=PATH    writes its process ID to PATH
//	leak        from the second Read on, writes the token it returned
//	            first (whole and in part) on stderr and in its error
const rawArg = "credhost-raw-plugin"

// serveRaw runs the raw plugin; it returns when the plugin should exit.
func serveRaw(options string) {
	opts := strings.Split(options, ",")
	has := func(o string) bool { return slices.Contains(opts, o) }
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(1)
	}
	// The cookie: a plugin run by hand says so and exits.
	if os.Getenv("CREDHOST_PLUGIN") != "5d0c8e4b6f1a4d7c9e2b3a8f0c6d1e57" {
		fail("this is a credhost plugin; credhost runs it")
	}
	// Protocol version 1 must be among those the host offers.
	if !slices.Contains(strings.Split(os.Getenv("PLUGIN_PROTOCOL_VERSIONS"), ","), "1") {
		fail("host offers protocol versions %q; this plugin speaks 1", os.Getenv("PLUGIN_PROTOCOL_VERSIONS"))
	}
	for _, o := range opts {
		if path, ok := strings.CutPrefix(o, "pid="); ok {
			if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
				fail("write pid: %v", err)
			}
		}
		if path, ok := strings.CutPrefix(o, "env="); ok {
			if err := os.WriteFile(path, []byte(strings.Join(os.Environ(), "\x00")), 0o600); err != nil {
				fail("write env: %v", err)
			}
		}
	}
	for _, o := range opts {
		if spec, ok := strings.CutPrefix(o, "together="); ok {
			n, dir, _ := strings.Cut(spec, ":")
			want, err := strconv.Atoi(n)
			if err != nil {
				fail("together=%s: %v", spec, err)
			}
			term := make(chan os.Signal, 1)
			signal.Notify(term, syscall.SIGTERM)
			go func() {
				<-term
				me := filepath.Join(dir, strconv.Itoa(os.Getpid()))
				if err := os.WriteFile(me, nil, 0o600); err != nil {
					fail("together: %v", err)
				}
				for end := time.Now().Add(400 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
					if marks, _ := filepath.Glob(filepath.Join(dir, "[0-9]*[0-9]")); len(marks) >= want {
						_ = os.WriteFile(me+".all", nil, 0o600)
						break
					}
				}
				os.Exit(0)
			}()
		}
	}
	if has("stderr") {
		fmt.Fprintln(os.Stderr, "plain line from a raw plugin")
		fmt.Fprintln(os.Stderr, `{"@level":"info","@message":"json line without microseconds","@timestamp":"2026-01-02T03:04:05Z","n":1}`)
		fmt.Fprintln(os.Stderr, `{"@level":"WARNING","@message":"first of two lines\nsecond of two lines"}`)
		fmt.Fprintln(os.Stderr, `{"@level":"debug","@message":"a debug line"}`)
		fmt.Fprintln(os.Stderr, "\x1b[31mred\x1b[0m and a tab\there")
	}
	if has("badjson") {
		fmt.Fprintln(os.Stderr, `{"@message": 5, "@level": "warn"}`)
		fmt.Fprintln(os.Stderr, `{"@message": "level is a number", "@level": 3}`)
		fmt.Fprintln(os.Stderr, `{"@message": "timestamp is a number", "@level": "warn", "@timestamp": 7}`)
		fmt.Fprintln(os.Stderr, `{"@message": "nested", "@level": "warn", "obj": {"k": "v\u001b[2J"}}`)
	}
	if has("traceback") {
		fmt.Fprintln(os.Stderr, "Traceback (most recent call last):")
		fmt.Fprintln(os.Stderr, `  File "/opt/corp/plugin.py", line 3, in <module>`)
		fmt.Fprintln(os.Stderr, "    import grpc")
		fmt.Fprintln(os.Stderr, "ModuleNotFoundError: No module named 'grpc'")
		os.Exit(1)
	}

	// Listen on a unix socket in the directory the host names (TCP on
	// loopback would do as well).
	dir := os.Getenv("PLUGIN_UNIX_SOCKET_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	sock := filepath.Join(dir, fmt.Sprintf("raw-%d.sock", os.Getpid()))
	lis, err := net.Listen("unix", sock)
	if err != nil {
		fail("listen: %v", err)
	}

	// Mutual TLS: trust the host's certificate (PLUGIN_CLIENT_CERT, PEM),
	// require it, and present a self-signed certificate of our own.
	var serverOpts []grpc.ServerOption
	certField := ""
	if !has("nocert") {
		cert, der := rawCert(has("padded"))
		if has("padded") {
			certField = base64.StdEncoding.EncodeToString(der)
		} else {
			certField = base64.RawStdEncoding.EncodeToString(der)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(os.Getenv("PLUGIN_CLIENT_CERT"))) {
			fail("PLUGIN_CLIENT_CERT is not a PEM certificate")
		}
		if has("othercert") {
			cert, _ = rawCert(false)
		}
		if !has("notls") {
			serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(&tls.Config{
				Certificates: []tls.Certificate{cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
				MinVersion:   tls.VersionTLS12,
			})))
		}
	}
	serverOpts = append(serverOpts, grpc.ForceServerCodec(rawCodec{}))
	var reads atomic.Int32
	srv := grpc.NewServer(serverOpts...)
	srv.RegisterService(rawService("credhost.v1.Provider", map[string]rawHandler{
		"Info": func([]byte) ([]byte, error) {
			var b []byte
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendString(b, "raw")
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, "test")
			return b, nil
		},
		"Configure": func(req []byte) ([]byte, error) {
			config := rawField(req, 2)
			switch {
			case has("badconfig"):
				return nil, status.Error(codes.InvalidArgument, `invalid provider config: key "x" is required`)
			case has("echo"):
				fmt.Fprintf(os.Stderr, "configured with %s\n", config)
				fmt.Fprintf(os.Stderr, "{\"@level\":\"error\",\"@message\":\"configured\",\"config\":%q}\n", config)
				return nil, status.Errorf(codes.Internal, "cannot use config %s", config)
			}
			return nil, nil
		},
		"Read": func([]byte) ([]byte, error) {
			if has("leak") && reads.Add(1) > 1 {
				fmt.Fprintln(os.Stderr, "plain: the token was raw-leaky-token-0123456789abcdef")
				fmt.Fprintln(os.Stderr, `{"@level":"error","@message":"json: part of it: leaky-token-0123456","token":"raw-leaky-token-0123456789abcdef"}`)
				return nil, status.Error(codes.Internal, "store broke; it held raw-leaky-token-0123456789abcdef")
			}
			if has("leak") {
				var cred []byte
				cred = protowire.AppendTag(cred, 1, protowire.BytesType)
				cred = protowire.AppendString(cred, "raw-leaky-token-0123456789abcdef")
				var b []byte
				b = protowire.AppendTag(b, 1, protowire.BytesType)
				return protowire.AppendBytes(b, cred), nil
			}
			if has("found") {
				var cred []byte
				cred = protowire.AppendTag(cred, 1, protowire.BytesType)
				cred = protowire.AppendString(cred, "raw-token-A")
				var b []byte
				b = protowire.AppendTag(b, 1, protowire.BytesType)
				return protowire.AppendBytes(b, cred), nil
			}
			if has("prefixed") {
				return nil, status.Error(codes.NotFound, "no credential found: nothing in the raw store")
			}
			return nil, status.Error(codes.NotFound, "nothing in the raw store")
		},
	}), struct{}{})
	srv.RegisterService(rawService("grpc.health.v1.Health", map[string]rawHandler{
		"Check": func([]byte) ([]byte, error) {
			return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1), nil // SERVING
		},
	}), struct{}{})

	// The handshake line, then serve until the host ends the process.
	fmt.Printf("1|1|unix|%s|grpc|%s\n", sock, certField)
	_ = srv.Serve(lis)
}

// rawCert makes a self-signed ECDSA certificate for "localhost"; with
// padded, one whose DER length is not a multiple of 3, so its standard
// base64 ends in =.
func rawCert(padded bool) (tls.Certificate, []byte) {
	for {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(time.Now().UnixNano()),
			Subject:               pkix.Name{CommonName: "localhost"},
			DNSNames:              []string{"localhost"},
			NotBefore:             time.Now().Add(-time.Minute),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			panic(err)
		}
		if padded && len(der)%3 == 0 {
			continue
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der
	}
}

// rawField returns the bytes of field num in a protobuf message.
func rawField(msg []byte, num protowire.Number) []byte {
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return nil
		}
		msg = msg[l:]
		if n == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(msg)
			return v
		}
		l = protowire.ConsumeFieldValue(n, typ, msg)
		if l < 0 {
			return nil
		}
		msg = msg[l:]
	}
	return nil
}

// rawHandler answers one unary call with the encoded response.
type rawHandler func(req []byte) ([]byte, error)

// rawService describes a gRPC service whose methods take and return
// encoded messages; a method not listed answers UNIMPLEMENTED.
func rawService(name string, methods map[string]rawHandler) *grpc.ServiceDesc {
	desc := &grpc.ServiceDesc{ServiceName: name, HandlerType: (*any)(nil)}
	for m, h := range methods {
		desc.Methods = append(desc.Methods, grpc.MethodDesc{
			MethodName: m,
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var req []byte
				if err := dec(&req); err != nil {
					return nil, err
				}
				resp, err := h(req)
				if err != nil {
					return nil, err
				}
				return resp, nil
			},
		})
	}
	return desc
}

// rawCodec passes encoded messages through.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*p = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
