package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
)

// Defaults of the config block, each with its reason.
const (
	// defaultDialTimeout bounds connecting (and authenticating) to the
	// cluster: long enough for a TLS handshake to a remote member, short
	// enough that a dead cluster leaves time in the host's call timeout
	// (5 s by default) to move on to the next provider.
	defaultDialTimeout = 2 * time.Second
	// defaultCallTimeout bounds one etcd request (a Get, a Txn), inside
	// the host's own call timeout.
	defaultCallTimeout = 3 * time.Second
	// defaultLockTTL is the lease behind the fleet lock: how long a machine
	// that died holding it blocks the others. It must outlast a token
	// request (well under a second) with room for a slow one; the host's
	// refresh.timeout (10 s by default) bounds the wait for it.
	defaultLockTTL = 10 * time.Second
	// maxValueSize caps the document Read takes in: a credentials document
	// is under a KiB; etcd's own request limit is 1.5 MiB.
	maxValueSize = 1 << 20
)

// config is the provider's config block.
type config struct {
	// Endpoints are the members' client URLs (http:// or https://).
	Endpoints []string `json:"endpoints"`
	// Key is the etcd key holding the credentials document.
	Key string `json:"key"`
	// Object is the document's object holding the credential (default
	// claudeAiOauth), as the file provider's key.
	Object string `json:"object"`
	// LockKey names the fleet lock (default Key + ".lock"): the prefix of
	// the mutex's keys.
	LockKey string `json:"lock_key"`
	// LockTTL is the lease behind the lock (whole seconds).
	LockTTL sdk.Duration `json:"lock_ttl"`
	// CAFile, CertFile and KeyFile are PEM files: the CA that signed the
	// members' certificates, and this client's certificate and key.
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// Username is the etcd user; PasswordEnv names the environment
	// variable holding its password.
	Username    string `json:"username"`
	PasswordEnv string `json:"password_env"`
	// Password is refused: a password in a config file ends up in
	// backups, dotfile repositories and screen shares.
	Password    json.RawMessage `json:"password"`
	DialTimeout sdk.Duration    `json:"dial_timeout"`
	CallTimeout sdk.Duration    `json:"call_timeout"`
}

// settings is a checked config, ready to connect with.
type settings struct {
	endpoints   []string
	key         string
	object      string
	lockKey     string
	lockTTL     time.Duration
	tls         *tls.Config
	username    string
	password    string // never logged, never in a message
	passwordEnv string
	dialTimeout time.Duration
	callTimeout time.Duration
}

// parseConfig checks the config block req carries; lookupEnv reads the
// password's variable. Its errors match sdk.ErrInvalidConfig and name the
// provider and the key.
func parseConfig(req sdk.ConfigureRequest, lookupEnv func(string) (string, bool)) (*settings, error) {
	var c config
	if err := req.DecodeConfig(&c); err != nil {
		return nil, err
	}
	bad := func(key, format string, args ...any) error {
		return sdk.InvalidConfig("provider %q: key %q: %s", req.Name, key, fmt.Sprintf(format, args...))
	}
	if c.Password != nil {
		return nil, bad("password", "never put the etcd password in the config; name the environment variable that holds it in password_env, and list that variable in the provider's env")
	}
	s := &settings{
		key: c.Key, object: c.Object, lockKey: c.LockKey, username: c.Username, passwordEnv: c.PasswordEnv,
		lockTTL: c.LockTTL.Std(), dialTimeout: c.DialTimeout.Std(), callTimeout: c.CallTimeout.Std(),
	}
	if len(c.Endpoints) == 0 {
		return nil, bad("endpoints", "required: the members' client URLs, e.g. [https://etcd1:2379]")
	}
	secure := false
	for i, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Not quoted: what it holds may be a password.
			return nil, bad("endpoints", "endpoint %d is not an http:// or https:// URL with a host", i+1)
		}
		if u.User != nil {
			return nil, bad("endpoints", "an endpoint must not carry a user or password; use username and password_env")
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return nil, bad("endpoints", "%q: an endpoint is scheme://host:port, with no path", ep)
		}
		// etcd's client speaks to every member as it speaks to the
		// first: a list starting with http:// would send everything,
		// the password included, in plain text to the https:// ones.
		if i > 0 && (u.Scheme == "https") != secure {
			return nil, bad("endpoints", "mixes http:// and https://; list them all http:// or all https:// (the client would speak to every member as to the first)")
		}
		secure = u.Scheme == "https"
		s.endpoints = append(s.endpoints, ep)
	}
	if s.key == "" {
		return nil, bad("key", "required: the etcd key holding the credentials document, e.g. /credhost/team/claude")
	}
	if s.object == "" {
		s.object = credjson.DefaultKey
	}
	if s.lockKey == "" {
		s.lockKey = s.key + ".lock"
	}
	if s.lockKey == s.key || strings.HasPrefix(s.key, s.lockKey+"/") {
		return nil, bad("lock_key", "must differ from key and not be a prefix of it")
	}
	if s.lockTTL == 0 {
		s.lockTTL = defaultLockTTL
	}
	if s.lockTTL < 2*time.Second || s.lockTTL%time.Second != 0 {
		return nil, bad("lock_ttl", "%s: an etcd lease is whole seconds, at least 2s", s.lockTTL)
	}
	if s.dialTimeout == 0 {
		s.dialTimeout = defaultDialTimeout
	}
	if s.callTimeout == 0 {
		s.callTimeout = defaultCallTimeout
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, bad("cert_file", "cert_file and key_file go together (a client certificate and its key)")
	}
	if c.CAFile != "" || c.CertFile != "" {
		if !secure {
			return nil, bad("endpoints", "ca_file or cert_file is set but no endpoint is https://")
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, bad("ca_file", "%v", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, bad("ca_file", "%s holds no PEM certificate", c.CAFile)
			}
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, bad("cert_file", "%s and %s: %v", c.CertFile, c.KeyFile, err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		s.tls = cfg
	} else if secure {
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12} // the system's CAs
	}
	if s.passwordEnv != "" && s.username == "" {
		return nil, bad("password_env", "set username too")
	}
	if s.username != "" {
		if s.passwordEnv == "" {
			return nil, bad("password_env", "required with username: the environment variable holding the etcd password")
		}
		pw, ok := lookupEnv(s.passwordEnv)
		if !ok || pw == "" {
			return nil, bad("password_env", "$%s is not set in the plugin's environment (list it in the provider's env, so credhost passes it on)", s.passwordEnv)
		}
		s.password = pw
	}
	return s, nil
}
