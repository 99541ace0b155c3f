// Package env is the credhost provider for a token held in an environment
// variable, such as ANTHROPIC_AUTH_TOKEN (an enterprise token) or
// CLAUDE_CODE_OAUTH_TOKEN. It is read-only: Save and Refresh return
// sdk.ErrUnsupported (a process cannot change its parent's environment). A
// token from here is refreshed, if at all, through the stores the host
// config names in refresh_with.
//
// Config:
//
//	var: NAME            the variable holding the token (required)
//	expires_var: NAME    optional companion variable with the expiry
//	                     (epoch s or ms, or RFC 3339)
//	token_prefix: STR    optional format check, e.g. "sk-ant-oat01-"
//
// A Provider is safe for concurrent use once configured.
package env

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/credhost/credhost/sdk"
)

// Provider reads one environment variable.
type Provider struct {
	lookupEnv func(string) (string, bool)

	mu  sync.RWMutex
	cfg config
}

var _ sdk.Provider = (*Provider)(nil)

type config struct {
	Var         string `json:"var"`
	ExpiresVar  string `json:"expires_var"`
	TokenPrefix string `json:"token_prefix"`
}

// Option configures a Provider at construction.
type Option func(*Provider)

// WithLookupEnv replaces os.LookupEnv, so tests need not touch the process
// environment.
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(p *Provider) { p.lookupEnv = f }
}

// New returns an unconfigured env provider.
func New(opts ...Option) *Provider {
	p := &Provider{lookupEnv: os.LookupEnv}
	for _, o := range opts {
		o(p)
	}
	return p
}

// ConfigVars returns the variables an env provider with this config block
// reads: the token's (key "var") and the expiry's (key "expires_var"), ""
// when not named. A program that wires the plugin asks here rather than
// reading the keys itself: which variables to hand a plugin process, which
// variable `credhost exec` passes the token on in.
func ConfigVars(config map[string]any) (token, expires string) {
	token, _ = config["var"].(string)
	expires, _ = config["expires_var"].(string)
	return token, expires
}

// isVarName reports whether s is an environment variable name: a letter or
// '_', then letters, digits and '_' (^[A-Za-z_][A-Za-z0-9_]*$). Written out,
// not a regexp compiled in package init on every start.
func isVarName(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c != '_' && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Info describes the env provider: it can neither save nor refresh.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "env", Version: "1"}, nil
}

// Configure takes the variable names; `var` is required.
func (p *Provider) Configure(_ context.Context, req sdk.ConfigureRequest) error {
	var c config
	if err := req.DecodeConfig(&c); err != nil {
		return err
	}
	if c.Var == "" {
		return sdk.InvalidConfig("provider %q: key \"var\" is required (the environment variable holding the token)", req.Name)
	}
	for key, v := range map[string]string{"var": c.Var, "expires_var": c.ExpiresVar} {
		if v != "" && !isVarName(v) {
			return sdk.InvalidConfig("provider %q: key %q: %q is not an environment variable name", req.Name, key, v)
		}
	}
	p.mu.Lock()
	p.cfg = c
	p.mu.Unlock()
	return nil
}

// Read returns the token in the variable, or an error matching
// sdk.ErrNotFound, whose hint says to set it, when it is unset or empty.
func (p *Provider) Read(context.Context) (sdk.Credential, error) {
	p.mu.RLock()
	c := p.cfg
	p.mu.RUnlock()
	if c.Var == "" {
		return sdk.Credential{}, fmt.Errorf("env provider used before Configure")
	}
	tok, ok := p.lookupEnv(c.Var)
	tok = strings.TrimSpace(tok)
	switch {
	case !ok:
		return sdk.Credential{}, sdk.NotFound("$%s is not set", c.Var).WithHint("set $" + c.Var)
	case tok == "":
		return sdk.Credential{}, sdk.NotFound("$%s is empty", c.Var).WithHint("set $" + c.Var)
	case c.TokenPrefix != "" && !strings.HasPrefix(tok, c.TokenPrefix):
		return sdk.Credential{}, fmt.Errorf("$%s does not start with %q", c.Var, c.TokenPrefix)
	}
	cred := sdk.Credential{AccessToken: tok}
	if c.ExpiresVar != "" {
		if v, ok := p.lookupEnv(c.ExpiresVar); ok {
			exp, err := sdk.ParseExpiry(v)
			if err != nil {
				return sdk.Credential{}, fmt.Errorf("$%s: %w", c.ExpiresVar, err)
			}
			cred.ExpiresAt = exp
		}
	}
	return cred, nil
}

// Save is unsupported: the environment is read-only.
func (p *Provider) Save(context.Context, sdk.Credential) error {
	return sdk.Unsupported("an environment variable cannot be saved to")
}

// Refresh is unsupported: the host refreshes an env token through the stores
// named in refresh_with.
func (p *Provider) Refresh(context.Context, sdk.Credential) (sdk.Credential, error) {
	return sdk.Credential{}, sdk.Unsupported("an environment token is refreshed through refresh_with, not by itself")
}
