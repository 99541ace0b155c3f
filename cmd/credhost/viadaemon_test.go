package main

import "github.com/credhost/credhost/host/daemon"

// tokenJSON is what `credhost token --json` prints, as the tests read it:
// a daemon.Token, the JSON of the daemon's GET /v1/token too.
type tokenJSON = daemon.Token
