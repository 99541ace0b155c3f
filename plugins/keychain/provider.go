package keychain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
	"github.com/credhost/credhost/sdk/oauth"
)

// DefaultService is the keychain service Claude Code stores its credential
// under.
const DefaultService = "Claude Code-credentials"

// defaultTimeout bounds one keyring call: a working keyring answers in
// milliseconds; one that does not answer within a second is waiting for a
// prompt nobody will see, and the chain should move on.
const defaultTimeout = time.Second

// ErrUnavailable marks a keyring that cannot be reached (no session bus, no
// Secret Service, no answer). Read reports it as sdk.ErrNotFound.
var ErrUnavailable = errors.New("keyring unavailable")

// ErrNoItem is what a Store returns when it holds no such item.
var ErrNoItem = errors.New("no such keychain item")

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
	cacheDir  func() (string, error)
	limit     func(service, account string) (limit int, why string) // the platform's size limit

	mu  sync.Mutex // serialises Save's read-modify-write; guards cfg
	cfg settings
}

var _ sdk.Provider = (*Provider)(nil)

type settings struct {
	service, account, format, key, prefix string
	timeout                               time.Duration
	oauth                                 *oauth.Client
	configured                            bool
}

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
	p := &Provider{lookupEnv: os.LookupEnv, cacheDir: os.UserCacheDir, limit: sizeLimit}
	for _, o := range opts {
		o(p)
	}
	if p.store == nil {
		p.store = systemStore{lookupEnv: p.lookupEnv}
	}
	return p
}

type config struct {
	Service     string `json:"service"`
	Account     string `json:"account"`
	Format      string `json:"format"`
	Key         string `json:"key"`
	TokenPrefix string `json:"token_prefix"`
	Timeout     string `json:"timeout"`
}

// Configure checks the config block; it does not touch the keyring.
func (p *Provider) Configure(_ context.Context, req sdk.ConfigureRequest) error {
	var c config
	if err := req.DecodeConfig(&c); err != nil {
		return err
	}
	bad := func(key, msg string) error {
		return fmt.Errorf("%w: provider %q: key %q: %s", sdk.ErrInvalidConfig, req.Name, key, msg)
	}
	s := settings{service: c.Service, account: c.Account, format: c.Format, key: c.Key, prefix: c.TokenPrefix, timeout: defaultTimeout, configured: true}
	if s.service == "" {
		s.service = DefaultService
	}
	if s.account == "" {
		s.account = currentUser(p.lookupEnv)
		if s.account == "" {
			return bad("account", "not set, and the current user is unknown")
		}
	}
	switch s.format {
	case "":
		s.format = "json"
	case "json", "raw":
	default:
		return bad("format", fmt.Sprintf("%q: want json or raw", s.format))
	}
	if s.key == "" {
		s.key = credjson.DefaultKey
	}
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			return bad("timeout", fmt.Sprintf("%q: want a positive duration such as 1s", c.Timeout))
		}
		s.timeout = d
	}
	if req.OAuth.TokenURL != "" && s.format == "json" {
		client, err := oauth.New(req.OAuth)
		if err != nil {
			return err
		}
		s.oauth = client
	}
	p.mu.Lock()
	p.cfg = s
	p.mu.Unlock()
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

func (p *Provider) settings() (settings, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cfg.configured {
		return settings{}, errors.New("keychain provider used before Configure")
	}
	return p.cfg, nil
}

// Info reports Save, Refresh (json format with a token URL) and the lock
// file keyed by service and account.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	info := sdk.Info{Name: "keychain", Version: "1", CanSave: true}
	s, err := p.settings()
	if err != nil {
		return info, nil
	}
	info.CanRefresh = s.oauth != nil
	if dir, err := p.cacheDir(); err == nil {
		sum := sha256.Sum256([]byte(s.service + "\x00" + s.account))
		info.LockPath = filepath.Join(dir, "credhost", "locks", "keychain-"+hex.EncodeToString(sum[:8])+".lock")
	}
	return info, nil
}

// item names the keychain item in messages (never its secret).
func (s settings) item() string {
	return fmt.Sprintf("keychain item service=%q account=%q", s.service, s.account)
}

// Read returns the credential in the keychain item, or sdk.ErrNotFound when
// there is none or the keyring is unavailable.
func (p *Provider) Read(ctx context.Context) (sdk.Credential, error) {
	s, err := p.settings()
	if err != nil {
		return sdk.Credential{}, err
	}
	secret, err := p.get(ctx, s)
	if err != nil {
		return sdk.Credential{}, err
	}
	var cred sdk.Credential
	if s.format == "raw" {
		cred.AccessToken = strings.TrimSpace(secret)
		if cred.AccessToken == "" {
			return sdk.Credential{}, fmt.Errorf("%w: %s is empty", sdk.ErrNotFound, s.item())
		}
	} else {
		_, cred, err = credjson.Parse([]byte(secret), s.key)
		if errors.Is(err, credjson.ErrNoCredential) {
			return sdk.Credential{}, fmt.Errorf("%w: %s: %s", sdk.ErrNotFound, s.item(), strings.TrimPrefix(err.Error(), credjson.ErrNoCredential.Error()+": "))
		}
		if err != nil {
			return sdk.Credential{}, fmt.Errorf("%s: %w", s.item(), err)
		}
	}
	if s.prefix != "" && !strings.HasPrefix(cred.AccessToken, s.prefix) {
		return sdk.Credential{}, fmt.Errorf("%s: the access token does not start with %q", s.item(), s.prefix)
	}
	return cred, nil
}

// get reads the secret within the timeout, mapping an absent item and an
// unavailable keyring to sdk.ErrNotFound.
func (p *Provider) get(ctx context.Context, s settings) (string, error) {
	var secret string
	err := p.call(ctx, s, func() (err error) {
		secret, err = p.store.Get(s.service, s.account)
		return err
	})
	switch {
	case err == nil:
		return secret, nil
	case errors.Is(err, ErrNoItem):
		return "", fmt.Errorf("%w: no %s", sdk.ErrNotFound, s.item())
	case errors.Is(err, ErrUnavailable):
		return "", fmt.Errorf("%w: %v; %s", sdk.ErrNotFound, err, hint())
	}
	return "", fmt.Errorf("%s: %w", s.item(), err)
}

// call runs one keyring operation, giving up after the timeout: a keyring
// waiting for an unlock prompt never returns, and the chain must not wait
// with it. The abandoned call ends with the process.
func (p *Provider) call(ctx context.Context, s settings, op func() error) error {
	done := make(chan error, 1)
	go func() { done <- op() }()
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("%w: no answer within %s (a locked keyring waiting for an unlock prompt?)", ErrUnavailable, s.timeout)
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// Save writes cred into the keychain item; see the package documentation.
func (p *Provider) Save(ctx context.Context, cred sdk.Credential) error {
	s, err := p.settings()
	if err != nil {
		return err
	}
	if cred.AccessToken == "" {
		return fmt.Errorf("%s: refusing to save a credential with no access token", s.item())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	secret := cred.AccessToken
	if s.format == "json" {
		doc := &credjson.Document{}
		var old string
		err := p.call(ctx, s, func() (err error) {
			old, err = p.store.Get(s.service, s.account)
			return err
		})
		switch {
		case err == nil:
			parsed, _, perr := credjson.Parse([]byte(old), s.key)
			if perr != nil && !errors.Is(perr, credjson.ErrNoCredential) {
				return fmt.Errorf("%s: refusing to overwrite an item that does not parse (%v)", s.item(), perr)
			}
			doc = parsed
		case errors.Is(err, ErrNoItem):
		default:
			return fmt.Errorf("%s: save: %w", s.item(), err)
		}
		out, err := doc.Encode(s.key, cred)
		if err != nil {
			return fmt.Errorf("%s: %w", s.item(), err)
		}
		secret = string(out)
	}
	if limit, what := p.limit(s.service, s.account); limit > 0 && len(secret)+overhead(s.service, s.account) > limit {
		return fmt.Errorf("%s: the secret is %d bytes; %s (nothing was written)", s.item(), len(secret), what)
	}
	if err := p.call(ctx, s, func() error { return p.store.Set(s.service, s.account, secret) }); err != nil {
		return fmt.Errorf("%s: save: %w", s.item(), err)
	}
	return nil
}

// Refresh runs the refresh_token grant (json format with a token URL).
func (p *Provider) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	s, err := p.settings()
	if err != nil {
		return sdk.Credential{}, err
	}
	if s.oauth == nil {
		return sdk.Credential{}, fmt.Errorf("%w: keychain refresh needs format json and an oauth token_url", sdk.ErrUnsupported)
	}
	return s.oauth.Refresh(ctx, cred)
}
