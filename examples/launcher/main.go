// Command launcher starts N agent processes, each with a fresh token from
// `credhost serve`, and makes an HTTP call of its own through the daemon's
// Transport, which sets the token and, on a 401, has the daemon refresh it
// once (for every caller that saw it rejected) and replays the request.
//
//	credhost serve &
//	go run ./examples/launcher -n 3 -url https://api.example.com/v1/me -- sh -c 'echo "agent $AGENT: ${#CLAUDE_CODE_OAUTH_TOKEN}-byte token"'
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"sync"

	"github.com/credhost/credhost/host/daemon"
)

func main() {
	n := flag.Int("n", 2, "how many agents to start")
	url := flag.String("url", "", "an API URL to GET with the token first (optional)")
	tokenVar := flag.String("env", "CLAUDE_CODE_OAUTH_TOKEN", "the variable each agent gets its token in")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("launcher: name the agent command after --")
	}
	ctx := context.Background()
	// No daemon.WithChain: a launcher hands out the daemon's token.
	c, err := daemon.Dial(ctx, daemon.DefaultSocket())
	if err != nil {
		log.Fatalf("launcher: %v (is `credhost serve` running?)", err)
	}
	defer c.Close()

	if *url != "" {
		resp, err := (&http.Client{Transport: c.Transport(nil)}).Get(*url)
		if err != nil {
			log.Fatalf("launcher: %v", err)
		}
		resp.Body.Close()
		fmt.Printf("GET %s: %s\n", *url, resp.Status)
	}

	var agents sync.WaitGroup
	for i := range *n {
		tok, err := c.Token(ctx) // from memory; the daemon refreshes ahead
		if err != nil {
			log.Fatalf("launcher: agent %d: %v", i, err)
		}
		agent := exec.Command(flag.Arg(0), flag.Args()[1:]...)
		agent.Env = append(os.Environ(), *tokenVar+"="+tok.AccessToken, fmt.Sprintf("AGENT=%d", i))
		agent.Stdout, agent.Stderr = os.Stdout, os.Stderr
		if err := agent.Start(); err != nil {
			log.Fatalf("launcher: agent %d: %v", i, err)
		}
		agents.Go(func() { agent.Wait() })
	}
	agents.Wait()
}
