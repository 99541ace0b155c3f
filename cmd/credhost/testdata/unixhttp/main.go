// Command unixhttp is the floor for a request to credhost serve: a bare
// net/http server on a unix socket (the path is its one argument) that
// answers every request with a fixed JSON body the size of a token
// answer. A GET /v1/token round trip to the daemon is this plus credhost's
// own work (peer check, chain check, the cached token, metrics).
package main

import (
	"net"
	"net/http"
	"os"
	"strconv"
)

// body is the size and shape of a daemon.Token answer.
var body = []byte(`{"access_token":"sk-ant-oat01-floor-floor-floor-floor-floor-floor-floor-floor-floor-floor-floor-floor-floor","expires_at":"2026-11-29T08:00:00Z","provider":"file","refreshed":false,"degraded":false,"fingerprint":"sha256:0123456789ab"}` + "\n")

func main() {
	if len(os.Args) != 2 {
		os.Stderr.WriteString("usage: unixhttp SOCKET\n")
		os.Exit(2)
	}
	os.Remove(os.Args[1])
	ln, err := net.Listen("unix", os.Args[1])
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	os.Stderr.WriteString(err.Error() + "\n")
	os.Exit(1)
}
