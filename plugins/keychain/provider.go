package keychain

import (
	"context"
	"fmt"
	"os"
	"os/user"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/secretstore"
)

// DefaultService is the keychain service Claude Code stores its credential
// under.
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

// New returns an unconfigured keychain provider.
func New(opts ...Option) *Provider {
	p := &Provider{lookupEnv: os.LookupEnv, limit: sizeLimit, Provider: secretstore.Provider{Name: "keychain"}}
	for _, o := range opts {
		o(p)
	}
	if p.store == nil {
		p.store = systemStore{lookupEnv: p.lookupEnv}
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
		c.Service = DefaultService
	}
	if c.Account == "" {
		if c.Account = currentUser(p.lookupEnv); c.Account == "" {
			return fmt.Errorf("%w: provider %q: key \"account\": not set, and the current user is unknown", sdk.ErrInvalidConfig, req.Name)
		}
	}
	limit, why := p.limit(c.Service, c.Account)
	item, err := secretstore.NewItem(secretstore.Spec{
		Provider: req.Name,
		Describe: fmt.Sprintf("keychain item service=%q account=%q", c.Service, c.Account),
		Backend:  backend{p.store, c.Service, c.Account},
		Limit:    limit,
		LimitWhy: why,
		Hint:     hint(),
		LockKey:  c.Service + "\x00" + c.Account,
	}, c.Options, req.OAuth)
	if err != nil {
		return err
	}
	p.SetItem(item)
	return nil
}

// currentUser is the account Claude Code uses: the login name.
func currentUser(lookupEnv func(string) (string, bool)) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, v := range []string{"USER", "USERNAME", "LOGNAME"} {
		if s, ok := lookupEnv(v); ok && s != "" {
			return s
		}
	}
	return ""
}
