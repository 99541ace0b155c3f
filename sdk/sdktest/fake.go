package sdktest

import (
	"context"
	"fmt"

	"github.com/credhost/credhost/sdk"
)

// Fake is a fake provider for tests of code that calls providers (the host,
// a wrapper): each method calls the function in its field, so a test sets
// only the calls it cares about. It is for the faults a real store cannot
// be made to have on demand (a Save that never answers, another process
// refreshing mid-way); a test of a store itself uses the real store.
//
// A nil field gives a plain default: Info names the provider "fake" and
// declares nothing it can do; Configure succeeds; Read is sdk.ErrNotFound
// (an empty store); Save and Refresh are sdk.ErrUnsupported (a read-only
// store); Check is sdk.ErrUnsupported, which the host reads as a provider
// without checks; Lock is sdk.ErrUnsupported (a provider that holds no
// locks of its own). Fake is safe for concurrent use when its functions are.
// It works in-process and served as a plugin process (plugin.Serve).
type Fake struct {
	InfoF      func(ctx context.Context) (sdk.Info, error)
	ConfigureF func(ctx context.Context, req sdk.ConfigureRequest) error
	ReadF      func(ctx context.Context) (sdk.Credential, error)
	SaveF      func(ctx context.Context, cred sdk.Credential) error
	RefreshF   func(ctx context.Context, cred sdk.Credential) (sdk.Credential, error)
	CheckF     func(ctx context.Context) ([]sdk.Finding, error)
	LockF      func(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error)
}

var (
	_ sdk.Provider = Fake{}
	_ sdk.Checker  = Fake{}
	_ sdk.Locker   = Fake{}
)

// Info calls InfoF, or returns Info{Name: "fake"}.
func (f Fake) Info(ctx context.Context) (sdk.Info, error) {
	if f.InfoF == nil {
		return sdk.Info{Name: "fake"}, nil
	}
	return f.InfoF(ctx)
}

// Configure calls ConfigureF, or succeeds.
func (f Fake) Configure(ctx context.Context, req sdk.ConfigureRequest) error {
	if f.ConfigureF == nil {
		return nil
	}
	return f.ConfigureF(ctx, req)
}

// Read calls ReadF, or returns sdk.ErrNotFound.
func (f Fake) Read(ctx context.Context) (sdk.Credential, error) {
	if f.ReadF == nil {
		return sdk.Credential{}, fmt.Errorf("%w: the fake store is empty", sdk.ErrNotFound)
	}
	return f.ReadF(ctx)
}

// Save calls SaveF, or returns sdk.ErrUnsupported.
func (f Fake) Save(ctx context.Context, cred sdk.Credential) error {
	if f.SaveF == nil {
		return fmt.Errorf("%w: the fake store is read-only", sdk.ErrUnsupported)
	}
	return f.SaveF(ctx, cred)
}

// Refresh calls RefreshF, or returns sdk.ErrUnsupported.
func (f Fake) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	if f.RefreshF == nil {
		return sdk.Credential{}, fmt.Errorf("%w: the fake store cannot refresh", sdk.ErrUnsupported)
	}
	return f.RefreshF(ctx, cred)
}

// Check calls CheckF, or returns sdk.ErrUnsupported (no checks).
func (f Fake) Check(ctx context.Context) ([]sdk.Finding, error) {
	if f.CheckF == nil {
		return nil, fmt.Errorf("%w: the fake store has no checks", sdk.ErrUnsupported)
	}
	return f.CheckF(ctx)
}

// Lock calls LockF, or returns sdk.ErrUnsupported.
func (f Fake) Lock(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error) {
	if f.LockF == nil {
		return nil, fmt.Errorf("%w: the fake store holds no locks", sdk.ErrUnsupported)
	}
	return f.LockF(ctx, req)
}
