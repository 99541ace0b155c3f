// Package secretstore is the part every OS secret-store provider shares (the
// keychain, Windows Credential Manager, any private vault with a get/set
// API): the secret holds either Claude Code's credentials JSON document
// (sdk/credjson, read-modify-write) or a raw token; reads that cannot reach
// the store are not-found with a reason and a hint rather than faults; every
// read is bounded by a timeout (a store waiting on an unlock prompt never
// returns), while a write, once started, is waited for (one abandoned could
// land after the host released the store's locks); a size limit is checked
// before anything is written; refresh is the OAuth refresh_token grant
// (sdk/oauth). The cross-process lock is a flock file in LockDir.
//
// An optional helper: a provider for such a store may build on it; the
// contract a provider implements is package sdk.
//
// A provider supplies a Backend for its item and embeds Options in its
// config struct, so the shared keys (format, key, token_prefix, timeout)
// read the same everywhere.
//
// An Item is safe for concurrent use; its Saves are serialised.
package secretstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
	"github.com/credhost/credhost/sdk/oauth"
)

// DefaultTimeout bounds one store call: a working store answers in
// milliseconds; one that does not answer within a second is waiting for a
// prompt nobody will see, and the chain should move on.
const DefaultTimeout = time.Second

var (
	// ErrNoItem is what a Backend returns when the item does not exist.
	ErrNoItem = errors.New("no such item")
	// ErrUnavailable is wrapped by a Backend's error when the store cannot
	// be reached (no session bus, no service, locked, not on this OS).
	ErrUnavailable = errors.New("secret store unavailable")
)

// Backend is one item in a platform store.
type Backend interface {
	// Get returns the secret, ErrNoItem, or an error wrapping ErrUnavailable.
	Get() (string, error)
	// Set replaces the secret.
	Set(secret string) error
}

// Options are the config keys every secret-store provider shares; embed it
// in the provider's config struct.
type Options struct {
	// Format is "json" (default: the credentials document under Key) or
	// "raw" (the secret is the access token alone).
	Format string `json:"format"`
	// Key is the document's credential object, default claudeAiOauth.
	Key string `json:"key"`
	// TokenPrefix is an opt-in format check, e.g. "sk-ant-oat01-".
	TokenPrefix string `json:"token_prefix"`
	// Timeout bounds one store read, e.g. "1s" or 2 (seconds); it must be
	// positive. Nil (the key left out) means DefaultTimeout.
	Timeout *sdk.Duration `json:"timeout"`
}

// Spec describes one item for an Item.
type Spec struct {
	// Provider is the provider's name in the host config, for messages.
	Provider string
	// Describe names the item in messages, never its secret, e.g.
	// `keychain item service="x" account="y"`.
	Describe string
	// Backend reaches the item.
	Backend Backend
	// Limit is the store's size limit for the secret in bytes (0: none);
	// LimitWhy says which store and what it counts.
	Limit    int
	LimitWhy string
	// Hint tells the user what to do when the store is unavailable.
	Hint string
	// Login tells the user what to do when the item is missing or holds
	// no credential, one line per thing to try: how to log in so the
	// client that uses the store writes it (the words for that client
	// come from the program that wires the provider). Empty: DefaultLogin.
	Login string
	// LockKey identifies the item for its cross-process lock file.
	LockKey string
}

// Item is a configured secret-store credential.
type Item struct {
	spec    Spec
	format  string
	key     string
	prefix  string
	timeout time.Duration
	oauth   *oauth.Client

	mu sync.Mutex // serialises Save's read-modify-write
}

// NewItem checks o and builds the item. An OAuth client is set up when
// oauthCfg has a token URL and the format is json (a raw secret has no
// refresh token to refresh with).
func NewItem(spec Spec, o Options, oauthCfg sdk.OAuthConfig) (*Item, error) {
	bad := func(key, msg string) error {
		return sdk.InvalidConfig("provider %q: key %q: %s", spec.Provider, key, msg)
	}
	it := &Item{spec: spec, format: o.Format, key: o.Key, prefix: o.TokenPrefix, timeout: DefaultTimeout}
	switch it.format {
	case "":
		it.format = "json"
	case "json", "raw":
	default:
		return nil, bad("format", fmt.Sprintf("%q: want json or raw", o.Format))
	}
	if it.key == "" {
		it.key = credjson.DefaultKey
	}
	if o.Timeout != nil {
		if *o.Timeout <= 0 {
			return nil, bad("timeout", fmt.Sprintf("%q: want a positive duration such as 1s", o.Timeout.Std().String()))
		}
		it.timeout = o.Timeout.Std()
	}
	if oauthCfg.TokenURL != "" && it.format == "json" {
		client, err := oauth.New(oauthCfg)
		if err != nil {
			return nil, err
		}
		it.oauth = client
	}
	return it, nil
}

// Info fills in what the item can do and its lock: a flock file keyed by
// plugin and LockKey in the user's lock directory (see LockDir), so every
// process of this user serialises its refreshes of the item, whatever its
// environment. It fails when that directory is not safe to use: the host
// then refuses to refresh rather than refresh without the lock.
func (it *Item) Info(name string) (sdk.Info, error) {
	info := sdk.Info{Name: name, Version: "1", CanSave: true, CanRefresh: it.oauth != nil}
	dir, err := LockDir()
	if err != nil {
		return info, err
	}
	sum := sha256.Sum256([]byte(it.spec.LockKey))
	info.Locks = []sdk.Lock{{Kind: sdk.LockFlock, Path: filepath.Join(dir, name+"-"+hex.EncodeToString(sum[:8])+".lock"), Scope: sdk.LockScopeRefresh}}
	return info, nil
}

// LockDir is the directory for this user's secret-store locks, the same for
// every process of the user: $XDG_RUNTIME_DIR/credhost/locks when
// $XDG_RUNTIME_DIR is set to a directory this user owns, else a directory
// named after the uid under os.TempDir() (credhost-UID), created 0700 and
// refused unless it is a real directory (not a link) owned by this user
// with mode 0700. Not the cache directory: $XDG_CACHE_HOME differs
// between environments (a service, an IDE, a shell) of one user, and two
// processes locking different files serialise nothing.
func LockDir() (string, error) {
	if rt := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rt) {
		if st, err := os.Lstat(rt); err == nil && st.IsDir() && ownedByMe(st) {
			return filepath.Join(rt, "credhost", "locks"), nil
		}
	}
	dir := filepath.Join(os.TempDir(), userDirName())
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("lock directory %s: %w", dir, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("lock directory %s: %w", dir, err)
	}
	if !st.IsDir() || !ownedByMe(st) || (privateModes && st.Mode().Perm() != 0o700) {
		return "", fmt.Errorf("lock directory %s is not a directory of this user's with mode 0700 (%s); refusing to use it (remove it)", dir, st.Mode())
	}
	return dir, nil
}

// DefaultLogin is the hint for an item that holds no credential when the
// Spec names none.
const DefaultLogin = "log in again so a token is stored"

// login is what to do about an item with no credential.
func (it *Item) login() string {
	if it.spec.Login != "" {
		return it.spec.Login
	}
	return DefaultLogin
}

// Read returns the credential in the item, or an error matching
// sdk.ErrNotFound, with a hint, when there is none or the store is
// unavailable.
func (it *Item) Read(ctx context.Context) (sdk.Credential, error) {
	secret, err := it.get(ctx)
	switch {
	case errors.Is(err, ErrNoItem):
		return sdk.Credential{}, sdk.NotFound("no %s", it.spec.Describe).WithHint(it.login())
	case errors.Is(err, ErrUnavailable):
		return sdk.Credential{}, sdk.NotFound("%v; %s", err, it.spec.Hint).WithHint(it.spec.Hint)
	case err != nil:
		return sdk.Credential{}, fmt.Errorf("%s: %w", it.spec.Describe, err)
	}
	return it.parse(secret)
}

// get reads the secret within the timeout. The secret comes back on a
// channel: a Get abandoned at the timeout still finishes later, and must
// not write to anything get returns.
func (it *Item) get(ctx context.Context) (string, error) {
	got := make(chan string, 1)
	err := it.call(ctx, func() error {
		secret, err := it.spec.Backend.Get()
		got <- secret
		return err
	})
	if err != nil {
		return "", err
	}
	return <-got, nil
}

// parse reads a credential out of the secret in the item's format.
func (it *Item) parse(secret string) (sdk.Credential, error) {
	var cred sdk.Credential
	if it.format == "raw" {
		cred.AccessToken = strings.TrimSpace(secret)
		if cred.AccessToken == "" {
			return sdk.Credential{}, sdk.NotFound("%s is empty", it.spec.Describe).WithHint(it.login())
		}
	} else {
		var err error
		_, cred, err = credjson.Parse([]byte(secret), it.key)
		if errors.Is(err, credjson.ErrNoCredential) {
			return sdk.Credential{}, sdk.NotFound("%s: %w", it.spec.Describe, err).WithHint(it.login())
		}
		if err != nil {
			return sdk.Credential{}, fmt.Errorf("%s: %w", it.spec.Describe, err)
		}
	}
	if it.prefix != "" && !strings.HasPrefix(cred.AccessToken, it.prefix) {
		return sdk.Credential{}, fmt.Errorf("%s: the access token does not start with %q", it.spec.Describe, it.prefix)
	}
	return cred, nil
}

// call runs one store operation, giving up after the timeout. The abandoned
// call ends with the process.
func (it *Item) call(ctx context.Context, op func() error) error {
	done := make(chan error, 1)
	go func() { done <- op() }()
	timer := time.NewTimer(it.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("%w: no answer within %s (a locked store waiting for an unlock prompt?)", ErrUnavailable, it.timeout)
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// Save writes cred into the item: in json format by read-modify-write that
// keeps every key it does not own (and refuses to overwrite an item it cannot
// parse); the size limit is checked before anything is written.
func (it *Item) Save(ctx context.Context, cred sdk.Credential) error {
	if cred.AccessToken == "" {
		return fmt.Errorf("%s: refusing to save a credential with no access token", it.spec.Describe)
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	secret := cred.AccessToken
	if it.format == "json" {
		var old []byte // nil: no item yet
		held, err := it.get(ctx)
		switch {
		case err == nil:
			old = []byte(held)
		case errors.Is(err, ErrNoItem):
		default:
			return fmt.Errorf("%s: save: %w", it.spec.Describe, err)
		}
		out, err := credjson.Merge(old, it.key, cred)
		if err != nil {
			return fmt.Errorf("%s: %w", it.spec.Describe, err)
		}
		secret = string(out)
	}
	if it.spec.Limit > 0 && len(secret) > it.spec.Limit {
		return fmt.Errorf("%s: the secret is %d bytes; %s (nothing was written)", it.spec.Describe, len(secret), it.spec.LimitWhy)
	}
	// The write is waited for, however long it takes: abandoned at a
	// timeout, it could land after the host released the store's locks,
	// over a token another process saved since (or after that process
	// read the spent one). The read above, bounded by the timeout, showed
	// the store answers.
	if err := it.spec.Backend.Set(secret); err != nil {
		return fmt.Errorf("%s: save: %w", it.spec.Describe, err)
	}
	return nil
}

// Check reports, for `credhost doctor`, whether the store is reachable and
// the item exists and parses.
func (it *Item) Check(ctx context.Context) []sdk.Finding {
	login := it.login()
	secret, err := it.get(ctx)
	switch {
	case errors.Is(err, ErrUnavailable):
		return []sdk.Finding{{Severity: sdk.SeverityWarning, Message: err.Error(), Fix: it.spec.Hint}}
	case errors.Is(err, ErrNoItem):
		return []sdk.Finding{{Severity: sdk.SeverityWarning, Message: "no " + it.spec.Describe, Fix: login}}
	case err != nil:
		return []sdk.Finding{{Severity: sdk.SeverityError, Message: fmt.Sprintf("%s: %v", it.spec.Describe, err), Fix: it.spec.Hint}}
	}
	switch _, err := it.parse(secret); {
	case errors.Is(err, sdk.ErrNotFound):
		return []sdk.Finding{{Severity: sdk.SeverityWarning, Message: err.Error(), Fix: login}}
	case err != nil:
		return []sdk.Finding{{Severity: sdk.SeverityError, Message: err.Error(), Fix: "fix or remove the item (credhost will not overwrite it), then log in again"}}
	}
	return []sdk.Finding{{Severity: sdk.SeverityOK, Message: it.spec.Describe + " holds a credential"}}
}

// Refresh runs the refresh_token grant (json format with a token URL).
func (it *Item) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	if it.oauth == nil {
		return sdk.Credential{}, sdk.Unsupported("%s: refresh needs format json and an oauth token_url", it.spec.Describe)
	}
	return it.oauth.Refresh(ctx, cred)
}

// Provider is the sdk.Provider methods of a secret-store provider, over the
// Item its Configure builds: embed it and implement Configure, ending with
// SetItem. Name is the plugin's name, reported by Info.
type Provider struct {
	Name string

	mu   sync.RWMutex
	item *Item
}

// SetItem installs the configured item.
func (p *Provider) SetItem(it *Item) {
	p.mu.Lock()
	p.item = it
	p.mu.Unlock()
}

func (p *Provider) configured() (*Item, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.item == nil {
		return nil, fmt.Errorf("%s provider used before Configure", p.Name)
	}
	return p.item, nil
}

// Info reports Save, Refresh (json format with a token URL) and the lock
// file of the item.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	it, err := p.configured()
	if err != nil {
		return sdk.Info{Name: p.Name, Version: "1", CanSave: true}, nil
	}
	return it.Info(p.Name)
}

// Read returns the item's credential, or sdk.ErrNotFound when there is none
// or the store is unavailable.
func (p *Provider) Read(ctx context.Context) (sdk.Credential, error) {
	it, err := p.configured()
	if err != nil {
		return sdk.Credential{}, err
	}
	return it.Read(ctx)
}

// Save writes cred into the item.
func (p *Provider) Save(ctx context.Context, cred sdk.Credential) error {
	it, err := p.configured()
	if err != nil {
		return err
	}
	return it.Save(ctx, cred)
}

// Check reports the item's findings for `credhost doctor`.
func (p *Provider) Check(ctx context.Context) ([]sdk.Finding, error) {
	it, err := p.configured()
	if err != nil {
		return nil, err
	}
	return it.Check(ctx), nil
}

// Refresh runs the refresh_token grant.
func (p *Provider) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	it, err := p.configured()
	if err != nil {
		return sdk.Credential{}, err
	}
	return it.Refresh(ctx, cred)
}
