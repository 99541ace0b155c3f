package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/credhost/credhost/host/daemon"
)

// A launcher asks the daemon for a token per agent and calls the API
// through its Transport, which has the daemon refresh once on a 401.
func ExampleDial() {
	ctx := context.Background()
	c, err := daemon.Dial(ctx, daemon.DefaultSocket())
	if errors.Is(err, daemon.ErrUnavailable) {
		fmt.Println("no daemon: run `credhost token`, or embed a host.Host")
		return
	}
	defer c.Close()
	tok, err := c.Token(ctx)
	if err != nil {
		fmt.Println(err) // errors.Is host.ErrNoCredential, host.ErrRefreshFailed, ...
		return
	}
	fmt.Println("token", tok.Fingerprint, "from", tok.Provider)

	api := &http.Client{Transport: c.Transport(nil)}
	resp, err := api.Get("https://api.example.com/v1/me")
	if err == nil {
		resp.Body.Close()
	}
}
