// Package sdk is the contract between credhost and a provider plugin: the
// Credential value, the Provider interface and its optional interfaces, the
// sentinel errors the host branches on. It imports nothing but the standard
// library: no go-plugin, gRPC or protobuf.
//
// A provider is one credential store (an environment variable, a JSON file, an
// OS keychain, a private token service). It reads, saves and refreshes; the
// host applies every shared rule on top (priority chain, expiry buffer,
// single-flight refresh, graceful degradation, write-back), so a provider stays
// small. Package sdk/plugin serves it as a plugin process, from main:
//
//	func main() { plugin.Serve(&myProvider{}) }
//
// (Serve lives there, with the go-plugin wiring it needs, because that
// wiring imports this package; sdk/plugin's doc says why.) Package
// sdk/sdktest is the conformance suite a provider runs in its tests.
//
// A provider may also implement Checker (findings for `credhost doctor`)
// and Locker (a lock it holds itself, see Locks);
// an error it returns may implement RetryDelayer (a token endpoint's
// Retry-After). The packages sdk/oauth (the refresh_token grant),
// sdk/credjson (a JSON credentials document) and sdk/secretstore (what OS
// secret stores share) are optional helpers an author may use; the
// contract is this package.
//
// # Concurrency
//
// The host calls Configure once, before anything but Info, then may call Read,
// Save and Refresh from several goroutines at once; a Provider must be safe for
// that.
//
// # Locks
//
// A store that saves declares in Info.Locks the cross-process locks the host
// must hold around its refresh, so that processes on one machine refresh it
// one at a time (with refresh-token rotation, a second refresh of the same
// token revokes the whole family). Each Lock has a kind: LockFlock, credhost's
// own (a flock file the kernel releases when its holder dies), or LockDir, a
// directory lock taken exactly as the npm package proper-lockfile takes it,
// for a store shared with a Node program such as Claude Code; and a scope:
// the whole refresh (re-read, token request, save) or the save only. The host
// takes the refresh locks in the order listed, then the save locks around the
// save, and releases them in reverse, all within refresh.timeout; list another
// program's locks in the order it takes them. A lock path that is a symlink,
// a named pipe, or not this user's fails the refresh, naming the path.
// LockProvider is a lock the provider holds itself (a fleet's lease in a
// distributed store, shared by machines that share one login): the provider
// implements Locker, and the host takes that lock through it, in order with
// the others, never refreshing when it cannot be had. Info.LockPath, the
// single flock of earlier SDKs, is still honoured when Locks is empty.
//
// # Errors
//
// Return NotFound("$%s is not set", name) when the store holds nothing, so
// the host moves on to the next provider quietly; Unsupported for an
// operation the store cannot do; InvalidConfig for a bad config block (name
// the key); ErrInvalidGrant when the token endpoint rejected the refresh
// token. Each matches its sentinel (ErrNotFound, ...) with errors.Is while
// its text is the reason alone; WithHint adds what the user can do (set the
// variable, log in), which the host lists when no provider has a
// credential. Kind, reason and hint survive the process boundary. Wrapping
// a sentinel with %w still matches, but its words then lead the text. Any
// other error is a fault of the provider: the host logs it as a warning and
// goes on. Error text must never contain a secret.
//
// # Stability
//
// This package follows semantic versioning: fields are added to the request
// and value structs, never removed, so plugins keep compiling.
package sdk
