package sdk

import plugin "github.com/hashicorp/go-plugin"

// ProtocolVersion is the plugin protocol version this SDK speaks. Bump it for
// a breaking change to credhost.proto and keep serving the old version beside
// the new one in PluginSets (go-plugin negotiates the highest common one).
const ProtocolVersion = 1

// PluginName is the key under which a plugin process serves its Provider.
const PluginName = "provider"

// Handshake is shared by host and plugins. The magic cookie is a UX feature,
// not security: it only stops a user from running a plugin binary by hand and
// staring at a handshake line. Integrity of third-party plugins comes from
// the sha256 pin in the host's config.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "CREDHOST_PLUGIN",
	MagicCookieValue: "5d0c8e4b6f1a4d7c9e2b3a8f0c6d1e57",
}

// PluginSets returns the go-plugin sets by protocol version, each serving
// impl (nil on the host side, which only dispenses clients).
func PluginSets(impl Provider) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1: {PluginName: &GRPCPlugin{Impl: impl}},
	}
}
