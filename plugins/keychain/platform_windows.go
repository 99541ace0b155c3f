//go:build windows

package keychain

// available: Credential Manager is always there.
func available(func(string) (string, bool)) error { return nil }

// quickGet: go-keyring's Credential Manager read is one API call already.
func quickGet(func(string) (string, bool), string, string) (string, error) {
	return "", errTakeLongPath
}

// unlockPrompt: quickGet never reports a locked keyring here.
func unlockPrompt(func(string) (string, bool), string) (bool, error) {
	return false, errTakeLongPath
}

// lockedCollection: Credential Manager is never locked.
func lockedCollection(func(string) (string, bool)) (string, error) { return "", nil }

// unlockCooldown: Credential Manager never prompts, so no read is held
// back (see unlockGate).
const unlockCooldown = 0

// sizeLimit is Credential Manager's limit on a generic credential's blob.
func sizeLimit(service, account string) (int, string) {
	return 2560, "Windows Credential Manager takes at most 2560 bytes"
}

func hint() string { return "check the credential in Windows Credential Manager" }

// missingHint: Credential Manager answered; there is no item.
func missingHint() string { return "" }
