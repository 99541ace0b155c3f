package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk/oauth/oauthtest"
)

// storm starts n `credhost token` processes at once and returns each one's
// stdout, stderr and error.
func (s *sandbox) storm(n int) (outs, errs []string, runErrs []error) {
	outs, errs, runErrs = make([]string, n), make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(credhostBin, "token")
			cmd.Env = s.env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			<-start
			runErrs[i] = cmd.Run()
			outs[i], errs[i] = stdout.String(), stderr.String()
		})
	}
	close(start)
	wg.Wait()
	return outs, errs, runErrs
}

// TestRefreshStormAcrossProcesses: 16 processes find the same expired token
// at once against a rotating endpoint that answers after 500 ms. Exactly one
// refresh request may reach it (a second would reuse a rotated refresh token
// and revoke the family); every process prints the same new token.
func TestRefreshStormAcrossProcesses(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, mode string) {
		s, srv := newRefreshSandbox(t, mode)
		srv.SetDelay(500 * time.Millisecond)
		old, _ := s.loginFile(srv, time.Now().Add(-time.Minute))
		const n = 16
		outs, errs, runErrs := s.storm(n)
		if srv.Requests() != 1 || srv.Reuses() != 0 {
			t.Errorf("%d token requests, %d reuses; want exactly 1 and none", srv.Requests(), srv.Reuses())
		}
		saved := s.readCredentials().Access
		if saved == old {
			t.Fatalf("the file still holds the old token")
		}
		for i := range n {
			if runErrs[i] != nil || outs[i] != saved+"\n" {
				t.Errorf("process %d: %v, printed the saved token: %v\nstderr:\n%s", i, runErrs[i], outs[i] == saved+"\n", errs[i])
			}
		}
	})
}

// TestKilledLockHolderDoesNotBlock kills a process with SIGKILL while it
// holds the refresh lock (its token request in flight); the next process
// must get the lock at once and refresh.
func TestKilledLockHolderDoesNotBlock(t *testing.T) {
	t.Parallel()
	s, srv := newRefreshSandbox(t, "in-process")
	srv.SetDelay(10 * time.Second)
	s.loginFile(srv, time.Now().Add(-time.Minute))

	holder := exec.Command(credhostBin, "token")
	holder.Env = s.env
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.Arrived() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if srv.Arrived() == 0 {
		holder.Process.Kill()
		t.Fatal("the first process never sent its refresh request")
	}
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()

	srv.SetDelay(0)
	start := time.Now()
	r := s.run("token", "--json")
	if r.code != 0 {
		t.Fatalf("token after the holder was killed: exit %d\n%s", r.code, r.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v: the dead holder's lock blocked the next process", d)
	}
	if srv.Reuses() != 0 {
		t.Errorf("%d refresh-token reuses", srv.Reuses())
	}
	if srv.Arrived() != 2 || srv.Requests() != 1 {
		t.Errorf("%d requests arrived, %d answered; want the killed one (unanswered) and one more", srv.Arrived(), srv.Requests())
	}
}

// BenchmarkRefresh times one `credhost token` that refreshes, next to 16 at
// once on the same expired token (one refreshes, fifteen wait on the lock
// and read its result), against an endpoint that answers at once.
// Run: go test -run '^$' -bench Refresh -count 10 ./cmd/credhost | benchstat -
func BenchmarkRefresh(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("processes=%d", n), func(b *testing.B) {
			srv := oauthtest.NewServer(b)
			s := &sandbox{t: &testing.T{}, home: b.TempDir()}
			s.env = newSandboxEnv(s.home)
			s.setenv("CREDHOST_BUILTIN=in-process", "CLAUDE_OAUTH_TOKEN_URL="+srv.TokenURL())
			for b.Loop() {
				b.StopTimer()
				s.loginFile(srv, time.Now().Add(-time.Minute))
				before := srv.Requests()
				b.StartTimer()
				_, _, errs := s.storm(n)
				b.StopTimer()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				if srv.Requests()-before != 1 {
					b.Fatalf("%d requests for one storm", srv.Requests()-before)
				}
				b.StartTimer()
			}
		})
	}
}
