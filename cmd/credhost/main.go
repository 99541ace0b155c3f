// Command credhost prints a fresh credential for long-running agents, walking
// a configured priority chain of provider plugins. See README.md and
// config.example.yaml.
//
// Exit codes: 0 ok (also when degraded), 1 no credential found, 2 usage or
// config error, 3 refresh required but impossible (--strict only).
package main

import (
	"os"

	"github.com/credhost/credhost/sdk/plugin"
)

func main() {
	// credhost holds tokens in memory: keep them out of core dumps (and,
	// on Linux, out of reach of other processes of the user).
	plugin.DisableCoreDumps()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
