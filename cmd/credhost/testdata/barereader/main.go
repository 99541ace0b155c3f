// Command barereader is the floor for a cold `credhost token`: a minimal Go
// program that reads ~/.claude/.credentials.json and prints the access token.
// The benchmarks in cmd/credhost run it next to credhost in the same run.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	home, err := os.UserHomeDir()
	if err != nil {
		os.Exit(1)
	}
	data, err := os.ReadFile(filepath.Join(home, ".claude", ".credentials.json"))
	if err != nil {
		os.Exit(1)
	}
	var doc struct {
		OAuth struct {
			AccessToken string `json:"accessToken"`
		} `json:"claudeAiOauth"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.OAuth.AccessToken == "" {
		os.Exit(1)
	}
	fmt.Println(doc.OAuth.AccessToken)
}
