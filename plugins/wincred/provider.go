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
	"fmt"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/secretstore"
)

// DefaultTarget is the target name used when the config names none.
const DefaultTarget = "Claude Code-credentials"

// loginHint is how the target gets a credential: Claude Code writes it when
// the user logs in. `credhost doctor` shows it when the target holds none.
const loginHint = "log in (for Claude Code: run `claude`, then /login) if this store should hold your token"

// maxBlob is Credential Manager's limit on a generic credential's blob
// (CRED_MAX_CREDENTIAL_BLOB_SIZE is 5*512 bytes).
const maxBlob = 2560

// Provider is the Credential Manager store.
type Provider struct {
	newBackend func(target string) secretstore.Backend

	secretstore.Provider // Info, Read, Save, Refresh
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
	p := &Provider{newBackend: systemBackend, Provider: secretstore.Provider{Name: "wincred"}}
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
		Login:    loginHint,
		LockKey:  c.Target,
	}, c.Options, req.OAuth)
	if err != nil {
		return err
	}
	p.SetItem(item)
	return nil
}
