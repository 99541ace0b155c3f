//go:build darwin

package keychain

// systemStore is the macOS Keychain through /usr/bin/security, as Claude
// Code reads and writes it (see securityTool for why not go-keyring, whose
// items hold "go-keyring-base64:" data the client cannot parse).
func systemStore(func(string) (string, bool)) Store {
	return securityTool{path: "/usr/bin/security"}
}

// sizeLimit is the largest secret one `security -i` line carries for this
// service and account: credhost never passes the secret as an argument.
func sizeLimit(service, account string) (int, string) {
	n := maxSecret(service, account)
	return n, "the macOS Keychain item takes at most " + itoa(n) + " bytes through security's standard input (credhost never passes a secret as a process argument)"
}

func hint() string {
	return "if you are logged in, unlock the login keychain (security unlock-keychain)"
}

// missingHint is said besides how to log in when there is no item: a
// locked login keychain can hide it.
func missingHint() string { return hint() }
