// Package wincred is the credhost provider for a Windows Credential Manager
// generic credential, named by its target. On other systems it reports
// sdk.ErrNotFound ("not available on linux"), so one default chain works
// everywhere.
//
// Config:
//
//	target: NAME         the credential's target name, default
//	                     "Claude Code-credentials"
//	format, key, token_prefix, timeout
//	                     as for every secret store (sdk/secretstore): json
//	                     (default, Claude Code's credentials document) or raw
//
// Credential Manager holds at most 2560 bytes in a credential's blob; Save
// checks the size before anything is written and says so. Refresh is the
// OAuth refresh_token grant (sdk/oauth), in json format with a token_url.
//
// A Provider is safe for concurrent use.
package wincred

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/secretstore"
)

// DefaultTarget is the target name used when the config names none.
const DefaultTarget = "Claude Code-credentials"

// maxBlob is Credential Manager's limit on a generic credential's blob
// (CRED_MAX_CREDENTIAL_BLOB_SIZE is 5*512 bytes).
const maxBlob = 2560

// Provider is the Credential Manager store.
type Provider struct {
	newBackend func(target string) secretstore.Backend

	mu   sync.RWMutex
	item *secretstore.Item
}

var _ sdk.Provider = (*Provider)(nil)

// Option configures a Provider at construction.
type Option func(*Provider)

// WithBackend replaces Credential Manager (for tests).
func WithBackend(f func(target string) secretstore.Backend) Option {
	return func(p *Provider) { p.newBackend = f }
}

// New returns an unconfigured provider.
func New(opts ...Option) *Provider {
	p := &Provider{newBackend: systemBackend}
	for _, o := range opts {
		o(p)
	}
	return p
}

type config struct {
	Target string `json:"target"`
	secretstore.Options
}

// Configure checks the config block; it does not touch Credential Manager.
func (p *Provider) Configure(_ context.Context, req sdk.ConfigureRequest) error {
	var c config
	if err := req.DecodeConfig(&c); err != nil {
		return err
	}
	if c.Target == "" {
		c.Target = DefaultTarget
	}
	item, err := secretstore.NewItem(secretstore.Spec{
		Provider: req.Name,
		Describe: fmt.Sprintf("Credential Manager target %q", c.Target),
		Backend:  p.newBackend(c.Target),
		Limit:    maxBlob,
		LimitWhy: fmt.Sprintf("Windows Credential Manager takes at most %d bytes", maxBlob),
		Hint:     hint,
		LockKey:  c.Target,
	}, c.Options, req.OAuth)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.item = item
	p.mu.Unlock()
	return nil
}

func (p *Provider) configured() (*secretstore.Item, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.item == nil {
		return nil, errors.New("wincred provider used before Configure")
	}
	return p.item, nil
}

// Info reports Save, Refresh (json format with a token URL) and the lock file.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	item, err := p.configured()
	if err != nil {
		return sdk.Info{Name: "wincred", Version: "1", CanSave: true}, nil
	}
	return item.Info("wincred"), nil
}

// Read returns the credential, or sdk.ErrNotFound (also on other systems).
func (p *Provider) Read(ctx context.Context) (sdk.Credential, error) {
	item, err := p.configured()
	if err != nil {
		return sdk.Credential{}, err
	}
	return item.Read(ctx)
}

// Save writes cred into the credential's blob.
func (p *Provider) Save(ctx context.Context, cred sdk.Credential) error {
	item, err := p.configured()
	if err != nil {
		return err
	}
	return item.Save(ctx, cred)
}

// Refresh runs the refresh_token grant.
func (p *Provider) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	item, err := p.configured()
	if err != nil {
		return sdk.Credential{}, err
	}
	return item.Refresh(ctx, cred)
}
