// Package conformance holds the checks every credhost provider must pass,
// once, for both places they run: sdk/sdktest runs them as subtests of a Go
// test (sdktest.Run), and `credhost plugin check` runs them against any
// plugin executable, in any language, without a Go toolchain (RunCommand).
// One list of named checks (Checks) serves both, so the two never disagree.
//
// A check talks to providers a Factory builds and reports to a T, which
// *testing.T satisfies; this package does not import the testing package,
// so a program (credhost itself) can run the checks without linking it.
//
// Start starts a plugin executable over the same go-plugin setup the host
// uses (sdk/plugin.ClientConfig: handshake, gRPC, mutual TLS) and explains
// a start that fails in words a plugin author can act on: the magic cookie,
// a handshake line without a certificate, a padded certificate, a plugin
// that never prints its handshake. Process.Close says whether the plugin
// exited on its own when asked.
//
// Every call a check makes is bounded (Options.CallTimeout), so a plugin
// that hangs fails its check rather than the run. The package is safe for
// concurrent use: each check gets providers of its own.
package conformance
