package plugin

import (
	"crypto/tls"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/credhost/credhost/sdk"
)

// Serve runs p as a credhost plugin and returns when the host is done with
// it. Call it from main. stdout belongs to the go-plugin handshake: a plugin
// must never print; log through Logger instead.
//
// Serve also hardens the process for holding credentials: no core dumps
// (see DisableCoreDumps), and the process ends (with its process group,
// when it leads one, as the host starts it) as soon as the host that
// started it is gone, however it went, so a killed host leaves no plugin
// or helper of one behind.
func Serve(p sdk.Provider) {
	DisableCoreDumps()
	go watchParent(parentPollInterval)
	logger := Logger()
	conf := &goplugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(p),
		GRPCServer:       goplugin.DefaultGRPCServer,
		Logger:           logger,
	}
	clientPEM := os.Getenv(clientCertEnv)
	if clientPEM == "" || os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		// No host certificate: go-plugin serves as its client asked (a
		// credhost host refuses a plugin without TLS). Run by hand:
		// go-plugin says this is a plugin.
		goplugin.Serve(conf)
		return
	}
	// Mutual TLS as go-plugin's AutoMTLS does it, on a P-256 key of this
	// process's own rather than go-plugin's P-521 (see newIdentity).
	tlsConf, der, err := serverTLS(clientPEM)
	if err != nil {
		logger.Error("plugin TLS setup failed", "error", err)
		os.Exit(1)
	}
	conf.TLSProvider = func() (*tls.Config, error) { return tlsConf, nil }
	if err := withCertInHandshake(der, func() { goplugin.Serve(conf) }); err != nil {
		logger.Error("plugin TLS setup failed", "error", err)
		os.Exit(1)
	}
}

// Logger returns the logger a plugin should use: JSON lines on stderr, which
// the host parses and re-logs under the provider's name at the same level.
// The level follows the host's --log-level (passed as CREDHOST_LOG_LEVEL).
// Never log a token: log an sdk.Credential value (it redacts itself) or
// sdk.Fingerprint.
func Logger() hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Output:     os.Stderr,
		Level:      level,
		JSONFormat: true,
	})
}

// LogLevelEnv carries the host's log level to plugin processes.
const LogLevelEnv = "CREDHOST_LOG_LEVEL"

// OwnGroupEnv is set to "1" by a host that starts each plugin process in
// a process group of its own: a plugin started through a wrapper script
// (not its group's leader) may then end the whole group when the host
// goes, and a wrapper's other children go with it.
const OwnGroupEnv = "CREDHOST_PLUGIN_GROUP"

// parentPollInterval is how often a plugin checks that its host lives.
const parentPollInterval = 150 * time.Millisecond
