// Command keyringreader is the library floor for a cold `credhost token` on
// the Secret Service: a minimal Go program that reads one keychain item
// through go-keyring (the library credhost's keychain writes with, and reads
// a locked collection with) and prints the access token in it. The
// benchmarks in cmd/credhost run it next to credhost in the same run.
//
// Usage: keyringreader SERVICE ACCOUNT
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/zalando/go-keyring"
)

func main() {
	if len(os.Args) != 3 {
		os.Exit(2)
	}
	secret, err := keyring.Get(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var doc struct {
		OAuth struct {
			AccessToken string `json:"accessToken"`
		} `json:"claudeAiOauth"`
	}
	if err := json.Unmarshal([]byte(secret), &doc); err != nil || doc.OAuth.AccessToken == "" {
		os.Exit(1)
	}
	fmt.Println(doc.OAuth.AccessToken)
}
