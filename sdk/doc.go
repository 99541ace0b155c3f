// Package sdk is what a credhost plugin author imports: the Credential value,
// the Provider interface, the sentinel errors the host branches on, and Serve,
// which runs a Provider as a hashicorp/go-plugin subprocess.
//
// A provider is one credential store (an environment variable, a JSON file, an
// OS keychain, a private token service). It reads, saves and refreshes; the
// host applies every shared rule on top (priority chain, expiry buffer,
// single-flight refresh, graceful degradation, write-back), so a provider stays
// small:
//
//	func main() { sdk.Serve(&myProvider{}) }
//
// # Concurrency
//
// The host calls Configure once, before anything but Info, then may call Read,
// Save and Refresh from several goroutines at once; a Provider must be safe for
// that.
//
// # Errors
//
// Return (or wrap with %w) ErrNotFound when the store holds nothing, so the
// host moves on to the next provider quietly; ErrUnsupported for an operation
// the store cannot do; ErrInvalidConfig for a bad config block (name the key);
// ErrInvalidGrant when the token endpoint rejected the refresh token. These
// survive the process boundary: errors.Is works on the host side. Any other
// error is a fault of the provider: the host logs it as a warning and goes on.
// Error text must never contain a secret.
//
// # Stability
//
// This package follows semantic versioning: fields are added to the request
// and value structs, never removed, so plugins keep compiling.
package sdk
