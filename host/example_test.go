package host_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/host"
)

// Embedding the host in an agent launcher: load the configuration the CLI
// would use, get a token, and give the API client a Transport that refreshes
// once on a 401. Built-in providers come from the embedding program (here:
// the credhost binary serving them as plugin processes).
func Example() {
	cfg, err := host.LoadConfig(host.LoadOptions{})
	if err != nil {
		log.Fatal(err) // errors.Is(err, host.ErrConfig): a config problem, with file:line:column
	}
	builtins := map[string]host.Builtin{}
	for _, name := range []string{"env", "file", "keychain", "wincred"} {
		builtins[name] = host.Builtin{Command: func() *exec.Cmd { return exec.Command("credhost", "plugin", "serve", name) }}
	}
	h, err := host.New(cfg, host.WithBuiltins(builtins), host.WithLogger(hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})))
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	res, err := h.Token(context.Background())
	if err != nil {
		log.Fatal(err) // errors.Is(err, host.ErrNoCredential): every provider's reason is in the message
	}
	if res.Degraded {
		log.Printf("using a token whose refresh failed: %v", res.DegradedReason)
	}
	fmt.Println("token from", res.Provider, "fingerprint", res.Credential.Fingerprint())

	client := &http.Client{Transport: h.Transport(nil)}
	_ = client // client.Do(req) sets Authorization: Bearer …
}
