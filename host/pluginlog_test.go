package host

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// eofSignal closes reached when its reader returns io.EOF.
type eofSignal struct {
	r       io.Reader
	reached chan struct{}
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		close(e.reached)
	}
	return n, err
}

// TestStderrHeldBehindACallIsBounded: while a call that may answer with a
// token is in flight, the plugin's stderr lines wait; reading them goes
// on (a plugin never blocks on its own stderr), and what the host holds
// meanwhile is bounded: a flood loses lines, said in a warning, once the
// call has answered.
func TestStderrHeldBehindACallIsBounded(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	gate := make(chan struct{})
	wait := func() <-chan struct{} { return gate }
	var settled atomic.Pointer[func() <-chan struct{}]
	settled.Store(&wait)
	logger := pluginLogger{Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}), settled: &settled}

	line := strings.Repeat("x", 1000) + "\n"
	r := &eofSignal{r: strings.NewReader(strings.Repeat(line, 4*maxHeldStderr/len(line))), reached: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		relayStderr(r, logger, new(stderrTail))
		close(done)
	}()
	select {
	case <-r.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay stopped reading stderr while a call was in flight")
	}
	if strings.Contains(logs.String(), "xxx") {
		t.Fatal("a line was logged while the call was still in flight")
	}
	close(gate)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not finish once the call had answered")
	}
	out := logs.String()
	if !strings.Contains(out, "lines dropped") {
		t.Errorf("no warning about dropped lines:\n%.500s", out)
	}
	if n := strings.Count(out, "xxx\n"); n == 0 || n > maxHeldStderr/len(line) {
		t.Errorf("%d lines logged; want some, at most %d", n, maxHeldStderr/len(line))
	}
}
