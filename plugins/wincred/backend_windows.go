//go:build windows

package wincred

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/danieljoos/wincred"

	"github.com/credhost/credhost/sdk/secretstore"
)

const hint = "check the credential in Windows Credential Manager"

// credential is one generic credential in Credential Manager.
type credential struct{ target string }

func systemBackend(target string) secretstore.Backend { return credential{target} }

func (c credential) Get() (string, error) {
	cred, err := wincred.GetGenericCredential(c.target)
	switch {
	case errors.Is(err, syscall.ERROR_NOT_FOUND):
		return "", secretstore.ErrNoItem
	case err != nil:
		return "", fmt.Errorf("%w: %v", secretstore.ErrUnavailable, err)
	}
	return string(cred.CredentialBlob), nil
}

func (c credential) Set(secret string) error {
	cred := wincred.NewGenericCredential(c.target)
	cred.CredentialBlob = []byte(secret)
	cred.Persist = wincred.PersistLocalMachine
	return cred.Write()
}
