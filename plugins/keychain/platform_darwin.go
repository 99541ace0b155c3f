//go:build darwin

package keychain

// available: the macOS Keychain is always there (it may be locked).
func available(func(string) (string, bool)) error { return nil }

// sizeLimit is go-keyring's macOS limit on service, account and secret
// together (the security tool's command line): what is left for the secret.
func sizeLimit(service, account string) (int, string) {
	return 3000 - len(service) - len(account), "the macOS Keychain takes about 3000 bytes for service, account and secret together"
}

func hint() string {
	return "if you are logged in, unlock the login keychain (security unlock-keychain)"
}
