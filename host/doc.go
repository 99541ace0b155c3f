// Package host walks a configured chain of credential providers and applies
// the rules every provider shares, so a provider (sdk.Provider) only reads,
// saves and refreshes its own store. It is what the credhost command runs,
// and what a Go program embeds to get a token without a subprocess:
//
//	cfg, err := host.LoadConfig(host.LoadOptions{})
//	h, err := host.New(cfg, host.WithBuiltins(builtins))
//	defer h.Close()
//	res, err := h.Token(ctx) // res.Credential.AccessToken
//
// # The rules
//
// Each rule is named here by what it does; code, tests and messages use the
// same names.
//
//   - Chain. Providers are tried in config order; the first with a usable
//     credential wins. A provider that holds nothing (sdk.ErrNotFound) is
//     passed over quietly; one that fails (crash, timeout, bad data) is a
//     warning naming it, and the walk goes on. When none yields a
//     credential, the error is a *ChainError listing every provider with its
//     reason, then what to do: each provider's own hint (sdk.Hint), so the
//     host knows no plugin. Plugin processes are started a few at a time
//     ahead of the walk, never past the provider that yielded the last
//     credential; the order still decides, a start failure is reported
//     only for a provider the walk reached, and the plugins it did not
//     need are ended. (Host.walk, startAhead)
//   - Never refresh an enterprise token. A provider that cannot refresh (an
//     environment variable) is used as it is, whatever its expiry.
//     (Host.refreshSource: no source, no refresh)
//   - Borrow. An environment token with refresh_with borrows the expiry and
//     refresh token of the first listed store holding the same access
//     token, and is refreshed through that store; a store holding a
//     different token lends nothing, so the user's chosen token is never
//     replaced by a needless refresh. (Host.refreshSource)
//   - Buffer. A credential needs a refresh when it has an expiry and
//     now + refresh.buffer >= expiry; an unknown expiry means "assume
//     valid". Config loading refuses a negative or unparsable buffer.
//     (needsRefresh)
//   - Expiry formats. Stores may write epoch milliseconds or seconds (above
//     1e12 is milliseconds) or RFC 3339; providers parse all three with
//     sdk.ParseExpiry and sdk.ExpiryFromEpoch.
//   - Keep the refresh token. A refresh must yield a non-empty access token;
//     a response without a refresh token keeps the old one; a missing
//     expiry takes oauth.default_expires_in. The result is saved to the
//     store it came from. (Host.refreshLocked)
//   - Degrade. A refresh that fails (network, HTTP error, 429, bad JSON, a
//     rejected refresh token) returns the old credential marked
//     Result.Degraded, with a warning: it may still work for a while. A
//     rejected refresh token first re-reads the store, since another
//     process may have rotated it; only if the store still holds the
//     rejected one is the user told to log in again, and that token is
//     never presented again (a record beside the store's lock, or in the
//     user's cache directory for a fleet's store): it is spent, as when a
//     process killed mid-refresh was rotated a successor nobody holds, and
//     presenting it on every call would be a loop of reuses. A Retry-After
//     is honoured across processes (a record beside the store's lock).
//     Nothing the host does after a failed refresh writes to the store.
//     (Host.refreshOrDegrade, Host.refreshLocked, member.retryAfter,
//     member.rejected)
//   - Save failure. A refresh whose save fails still returns, and caches,
//     the new token, with a warning that it was not persisted.
//     (Host.refreshLocked)
//   - One refresh. Concurrent callers in one process share one refresh of a
//     store (singleflight); processes on one machine take the locks the
//     store declares (sdk.Info.Locks: credhost's flock, and the directory
//     locks Claude Code takes), re-read the store under them and use a
//     token another process saved. With refresh-token rotation a second
//     refresh of the same token revokes the whole family. A store shared
//     by machines declares a lock its provider holds itself (a lease in
//     the distributed store, sdk.Locker; for a plugin process, a Lock
//     stream that holds it while open), taken in order with the others:
//     when it cannot be had within refresh.timeout, nothing is refreshed
//     and the token is served degraded, saying why; when it is lost
//     before the save, the store is re-read and a newer login another
//     holder saved is never overwritten. (Host.refresh, takeLocks,
//     takeProviderLock, Host.saveAfterLoss)
//   - Reactive refresh. A 401 from the API forces one refresh of the token
//     that was rejected, unless the chain already yields a different one.
//     Transport replays the request once, deciding by status code alone.
//     A caller that knows the rejected token only by its fingerprint (a
//     client of credhost serve) names that. (Host.RefreshAfterUnauthorized,
//     Host.RefreshRejected, Host.Transport)
//
// A good result is served from memory, without any provider call, until it
// enters the buffer. A holder that runs for hours (credhost serve) calls
// Reread now and then, which walks the chain without refreshing, to learn
// of a store changed behind it.
//
// # Configuration
//
// LoadConfig finds the YAML (--config, $CREDHOST_CONFIG, the XDG config
// file, else the embedded default, DefaultConfigYAML) and ParseConfig
// reads it strictly: an unknown key or a bad value is a *ConfigError with
// file, line, column and key, quoting the file's text (${VAR}), never the
// environment's value. A Config built in Go starts from DefaultConfig,
// which holds every default, so an absent setting and an explicit 0 stay
// apart; New applies the same checks as the loader and refuses what it
// would refuse.
//
// # Plugins
//
// A provider runs in the host's process (a built-in handed in with
// WithBuiltins) or as a hashicorp/go-plugin subprocess (a built-in in
// process mode, or any `command:`). Either way every call is bounded by
// plugins.call_timeout. A plugin process gets a minimal environment, its
// own process group (ended with the host), a cap on what it may send, and,
// when its config pins a sha256, runs exactly the bytes that were hashed.
// Nothing a plugin prints reaches the host's output verbatim: its stderr
// (hclog JSON at its level, any other line at warn; relayStderr), its
// errors and findings pass one filter (known tokens and ${VAR} values
// removed, printable, capped); a stderr line read while a Read or Refresh
// is in flight waits for its answer, so the filter knows the token the
// plugin may have logged just before answering (sdkplugin.Settled). Close asks a plugin to exit through
// go-plugin's controller service, or with SIGTERM when it has none
// (running.end). sdk/proto/PROTOCOL.md is the protocol a plugin in any
// language speaks.
//
// # Concurrency
//
// A Host is safe for concurrent use. Close ends its plugin processes; a
// Host is not usable after Close.
//
// # Errors
//
// Token returns a *ChainError (errors.Is ErrNoCredential) when no provider
// yields a credential; Refresh wraps ErrRefreshFailed when a forced refresh
// is impossible or fails; configuration problems are *ConfigError
// (errors.Is ErrConfig) with the file, line, column and key. Every
// provider's failure is a *ProviderError naming the provider and the
// operation. No error carries a secret.
package host
