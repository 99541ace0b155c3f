package plugin

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/credhost/credhost/sdk"
)

// protocolVersion is the plugin protocol version this SDK speaks. Bump it
// for a breaking change to credhost.proto and keep serving the old version
// beside the new one in pluginSets (go-plugin negotiates the highest common
// one).
const protocolVersion = 1

// pluginName is the key under which a plugin process serves its Provider
// (the plugin name "provider" of credhost.proto's handshake).
const pluginName = "provider"

// Handshake is shared by host and plugins. The magic cookie is a UX feature,
// not security: it only stops a user from running a plugin binary by hand and
// staring at a handshake line. Integrity of third-party plugins comes from
// the sha256 pin in the host's config.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  protocolVersion,
	MagicCookieKey:   "CREDHOST_PLUGIN",
	MagicCookieValue: "5d0c8e4b6f1a4d7c9e2b3a8f0c6d1e57",
}

// pluginSets returns the go-plugin sets by protocol version, each serving
// impl (nil on the host side, which only dispenses clients).
func pluginSets(impl sdk.Provider) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		1: {pluginName: &grpcPlugin{impl: impl}},
	}
}

// maxMessageSize caps one gRPC message from a plugin: a credential is a
// few KiB, and a plugin must not make its client allocate without bound.
const maxMessageSize = 1 << 20

// ClientConfig returns the go-plugin client setup every credhost plugin
// client shares (the host's plugin processes and sdktest's): the handshake,
// the versioned plugin sets, gRPC only, mutual TLS with a certificate made
// for the one connection (go-plugin's AutoMTLS, on P-521; the host uses a
// P-256 ClientTLS per start instead, see ClientTLS.Apply), a cap on each message the plugin sends, and
// logger for go-plugin's own lines and the plugin's stderr.
//
// The caller says how the process runs: it sets Cmd (go-plugin starts it)
// or RunnerFunc (the caller starts it, as the host does to fix the
// plugin's environment and process group), and StartTimeout; then passes
// the config to go-plugin's NewClient and the client's protocol to
// Dispense.
func ClientConfig(logger hclog.Logger) *goplugin.ClientConfig {
	return &goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(nil),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           logger,
		AutoMTLS:         true,
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize)),
		},
	}
}

// Dispense returns the Provider a started plugin serves, calling it across
// rpc (from go-plugin's Client.Client). The error says what failed without
// naming the plugin: the caller knows its name.
func Dispense(rpc goplugin.ClientProtocol) (sdk.Provider, error) {
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		return nil, err
	}
	p, ok := raw.(sdk.Provider)
	if !ok {
		return nil, fmt.Errorf("dispensed %T, not a provider", raw)
	}
	return p, nil
}
