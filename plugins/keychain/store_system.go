package keychain

import (
	"errors"
	"fmt"

	"github.com/zalando/go-keyring"
)

// systemStore is the OS keyring through go-keyring.
type systemStore struct {
	lookupEnv func(string) (string, bool)
}

// Get maps go-keyring's answers to ErrNoItem and ErrUnavailable: any failure
// other than "no such item" means the keyring cannot be used right now.
func (s systemStore) Get(service, account string) (string, error) {
	if err := available(s.lookupEnv); err != nil {
		return "", err
	}
	secret, err := keyring.Get(service, account)
	switch {
	case errors.Is(err, keyring.ErrNotFound):
		return "", ErrNoItem
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return secret, nil
}

// Set stores the secret; the size limit was checked before.
func (s systemStore) Set(service, account, secret string) error {
	if err := available(s.lookupEnv); err != nil {
		return err
	}
	err := keyring.Set(service, account, secret)
	if errors.Is(err, keyring.ErrSetDataTooBig) {
		return fmt.Errorf("the keyring refused the secret as too big (%d bytes)", len(secret))
	}
	return err
}
