package keychain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strings"

	"golang.org/x/text/unicode/norm"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/secretstore"
)

// DefaultService is the keychain service Claude Code stores its credential
// under when no config directory is named (see claudeService).
const DefaultService = "Claude Code-credentials"

// Errors a Store returns; see sdk/secretstore.
var (
	ErrNoItem      = secretstore.ErrNoItem
	ErrUnavailable = secretstore.ErrUnavailable
)

// Store is the keyring underneath: the system keyring by default, a fake in
// unit tests (go-keyring's own global mock is not safe under -race).
type Store interface {
	// Get returns the secret of (service, account), ErrNoItem, or an error
	// wrapping ErrUnavailable.
	Get(service, account string) (string, error)
	// Set stores the secret of (service, account).
	Set(service, account, secret string) error
}

// Provider is the keychain store.
type Provider struct {
	store     Store
	lookupEnv func(string) (string, bool)
	limit     func(service, account string) (limit int, why string) // the platform's size limit
	login     string                                                // the hint for an item with no credential

	secretstore.Provider // Info, Read, Save, Refresh
}

var _ sdk.Provider = (*Provider)(nil)

// Option configures a Provider at construction.
type Option func(*Provider)

// WithStore replaces the system keyring.
func WithStore(s Store) Option { return func(p *Provider) { p.store = s } }

// WithLookupEnv replaces os.LookupEnv (for $DBUS_SESSION_BUS_ADDRESS).
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(p *Provider) { p.lookupEnv = f }
}

// WithLoginHint sets what a user is told when the item holds no
// credential, one line per thing to try: how to log in with the client
// that writes the item (credhost names Claude Code's /login). The default
// is secretstore.DefaultLogin.
func WithLoginHint(hint string) Option { return func(p *Provider) { p.login = hint } }

// New returns an unconfigured keychain provider.
func New(opts ...Option) *Provider {
	p := &Provider{lookupEnv: os.LookupEnv, limit: sizeLimit, Provider: secretstore.Provider{Name: "keychain"}}
	for _, o := range opts {
		o(p)
	}
	if p.store == nil {
		p.store = systemStore(p.lookupEnv)
	}
	return p
}

type config struct {
	Service string `json:"service"`
	Account string `json:"account"`
	secretstore.Options
}

// backend binds the store to one item.
type backend struct {
	store            Store
	service, account string
}

func (b backend) Get() (string, error)    { return b.store.Get(b.service, b.account) }
func (b backend) Set(secret string) error { return b.store.Set(b.service, b.account, secret) }

// Configure checks the config block; it does not touch the keyring.
func (p *Provider) Configure(_ context.Context, req sdk.ConfigureRequest) error {
	var c config
	if err := req.DecodeConfig(&c); err != nil {
		return err
	}
	if c.Service == "" {
		c.Service = claudeService(p.lookupEnv)
	}
	if c.Account == "" {
		c.Account = currentUser(p.lookupEnv)
	}
	limit, why := p.limit(c.Service, c.Account)
	item, err := secretstore.NewItem(secretstore.Spec{
		Provider: req.Name,
		Describe: fmt.Sprintf("keychain item service=%q account=%q", c.Service, c.Account),
		Backend:  backend{p.store, c.Service, c.Account},
		Limit:    limit,
		LimitWhy: why,
		Hint:     hint(),
		Login:    strings.TrimSpace(p.login + "\n" + missingHint()),
		LockKey:  c.Service + "\x00" + c.Account,
	}, c.Options, req.OAuth)
	if err != nil {
		return err
	}
	p.SetItem(item)
	return nil
}

// fallbackAccount is the account Claude Code uses when the user name is
// unknown or not a plain name.
const fallbackAccount = "claude-code-user"

// isPlainName reports whether name is one Claude Code uses as it is:
// letters, digits, '.', '_' and '-' (^[a-zA-Z0-9._-]+$). Written out, not a
// regexp compiled in package init on every start.
func isPlainName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		if c := name[i]; c != '.' && c != '_' && c != '-' && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// currentUser is the account Claude Code uses: $USER, else the OS user
// name, and "claude-code-user" when neither is known or the name is not
// [a-zA-Z0-9._-]+ (a Windows DOMAIN\user, say).
func currentUser(lookupEnv func(string) (string, bool)) string {
	name, _ := lookupEnv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if !isPlainName(name) {
		return fallbackAccount
	}
	return name
}

// claudeService is the service name Claude Code keeps its login under:
// "Claude Code" + "-custom-oauth" when $CLAUDE_CODE_CUSTOM_OAUTH_URL is set
// + "-credentials" + "-" and the first 8 hex digits of the SHA-256 of the
// config directory when one is named: $CLAUDE_SECURESTORAGE_CONFIG_DIR when
// it is set (an empty value: no suffix), else $CLAUDE_CONFIG_DIR when it is
// not empty. The client hashes the variable's value as written (Unicode
// NFC), not a resolved path.
func claudeService(lookupEnv func(string) (string, bool)) string {
	service := "Claude Code"
	if v, _ := lookupEnv("CLAUDE_CODE_CUSTOM_OAUTH_URL"); v != "" {
		service += "-custom-oauth"
	}
	service += "-credentials"
	dir, ok := lookupEnv("CLAUDE_SECURESTORAGE_CONFIG_DIR")
	if !ok {
		dir, _ = lookupEnv("CLAUDE_CONFIG_DIR")
	}
	if dir != "" {
		sum := sha256.Sum256([]byte(norm.NFC.String(dir)))
		service += "-" + hex.EncodeToString(sum[:])[:8]
	}
	return service
}
