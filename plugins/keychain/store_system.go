//go:build !darwin

package keychain

import (
	"errors"
	"fmt"

	"github.com/zalando/go-keyring"
)

// systemStore is the OS keyring: a Secret Service over D-Bus, or Windows
// Credential Manager, through go-keyring (macOS has its own driver, the
// security command; see security.go).
// Each Provider has its own, so its unlock gate is per Provider.
func systemStore(lookupEnv func(string) (string, bool)) Store {
	return &goKeyring{lookupEnv: lookupEnv, unlock: newUnlockGate(unlockCooldown)}
}

// goKeyring is the OS keyring through go-keyring, which speaks the Secret
// Service's D-Bus protocol and Credential Manager's API without cgo.
type goKeyring struct {
	lookupEnv func(string) (string, bool)
	// unlock holds back go-keyring's read, which may ask the user to
	// unlock the keyring, to once per unlockCooldown (nil: the platform
	// never prompts).
	unlock *unlockGate
}

// errTakeLongPath is quickGet's answer when the keyring's answers are not
// the plain case it handles: the caller reads through go-keyring.
var errTakeLongPath = errors.New("not the plain case: read through go-keyring")

// Get reads the item the quick way where the platform has one (quickGet),
// else through go-keyring, mapping its answers to ErrNoItem and
// ErrUnavailable: any failure other than "no such item" means the keyring
// cannot be used right now. go-keyring's read asks a locked keyring to
// unlock (a prompt on a desktop), so it is made only when the unlock gate
// lets it; otherwise the read answers at once, unavailable.
func (s *goKeyring) Get(service, account string) (string, error) {
	secret, err := quickGet(s.lookupEnv, service, account)
	if err != errTakeLongPath {
		if err == nil || err == ErrNoItem {
			s.unlock.seenUnlocked()
		}
		return secret, err
	}
	if err := available(s.lookupEnv); err != nil {
		return "", err
	}
	end, err := s.unlock.begin()
	if err != nil {
		return "", err
	}
	secret, err = keyring.Get(service, account)
	end(err == nil || errors.Is(err, keyring.ErrNotFound))
	switch {
	case errors.Is(err, keyring.ErrNotFound):
		return "", ErrNoItem
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return secret, nil
}

// Set stores the secret; the size limit was checked before.
func (s *goKeyring) Set(service, account, secret string) error {
	if err := available(s.lookupEnv); err != nil {
		return err
	}
	err := keyring.Set(service, account, secret)
	if errors.Is(err, keyring.ErrSetDataTooBig) {
		return fmt.Errorf("the keyring refused the secret as too big (%d bytes)", len(secret))
	}
	return err
}
