// Package plugin runs a credhost provider as a plugin process and connects
// to one: the hashicorp/go-plugin wiring of the contract in package sdk.
//
// A plugin author needs Serve, called from main:
//
//	import (
//		"github.com/credhost/credhost/sdk"
//		"github.com/credhost/credhost/sdk/plugin"
//	)
//
//	var _ sdk.Provider = (*myProvider)(nil)
//
//	func main() { plugin.Serve(&myProvider{}) }
//
// and, to log from the plugin process, Logger. The rest is for the
// programs that start plugins: the host and sdk/sdktest build their
// go-plugin client with ClientConfig and get the Provider with Dispense;
// LogLevelEnv and Handshake say what a plugin process is started with;
// Filter is the filter for what a plugin process sends;
// DisableCoreDumps hardens any program that holds credentials.
//
// # Why Serve lives here and not in package sdk
//
// The wiring adapts an sdk.Provider to gRPC, so it imports package sdk; an
// sdk.Serve would have to import the wiring back, a cycle Go forbids.
// Breaking it the other way (package sdk forwarding Serve to a wiring
// package registered at run time) needs a registration hook that every
// plugin must trigger, by init side effects or a blank import, and puts a
// hidden global into the contract. So, as Vault does (sdk/logical the
// contract, sdk/plugin its serving) and terraform-plugin-go does
// (tfprotov5 the types, tf5server their serving), the contract stays free
// of go-plugin, gRPC and protobuf, and serving is this package's. Its
// generated protocol code is internal to the SDK (sdk/internal/credhostpb);
// the protocol itself is public in sdk/proto/credhost.proto, for plugins
// in other languages.
//
// # Concurrency
//
// Serve hands the host's calls to the Provider as they arrive, several at
// once (hence the concurrency contract in package sdk). The Provider that
// Dispense returns may be called from several goroutines at once; it is
// usable until the go-plugin client that started the process is killed.
//
// # Locks a provider holds
//
// A Provider that implements sdk.Locker is served its Lock over a stream
// that stays open while the lock is held: the plugin lets the lock go when
// the host releases it or when the stream ends any other way (the host
// died), and reports a loss as it happens. The Provider that Dispense
// returns is an sdk.Locker whose holds are such streams; a plugin without
// locks of its own answers its Lock with sdk.ErrUnsupported.
//
// # Errors
//
// The sentinel errors of package sdk cross the process boundary as gRPC
// status codes and come back as the same sentinels (errors.Is works on the
// client side), with the provider's reason as the text (the sentinel's own
// words in front of it, which some plugins write, are dropped: the code
// carries them); a Retry-After an error carries (sdk.RetryDelayer) and a
// hint cross too. A client whose plugin process died gets an error that
// says so. Every string the plugin sends passes Filter before the client
// hands it on. sdk/proto/PROTOCOL.md is the whole protocol, for plugins
// written without this package.
package plugin
