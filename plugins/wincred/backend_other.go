//go:build !windows

package wincred

import (
	"fmt"
	"runtime"

	"github.com/credhost/credhost/sdk/secretstore"
)

const hint = "this provider works only on Windows; the chain goes on without it"

// unavailable stands for Credential Manager where there is none.
type unavailable struct{}

func systemBackend(string) secretstore.Backend { return unavailable{} }

func (unavailable) Get() (string, error) {
	return "", fmt.Errorf("%w: Windows Credential Manager is not available on %s", secretstore.ErrUnavailable, runtime.GOOS)
}

func (unavailable) Set(string) error {
	return fmt.Errorf("Windows Credential Manager is not available on %s", runtime.GOOS)
}
