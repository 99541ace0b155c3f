package host

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/sdktest"
)

// blockingFake is a fake in-process store whose operation op blocks until
// release is closed, ignoring its context, as the file store did on a named
// pipe swapped in between its check and its open (a race a test cannot win
// on demand). Every other operation works: Read returns an expired token,
// so Token refreshes and saves.
func blockingFake(op string, release <-chan struct{}) sdktest.Fake {
	block := func(name string) {
		if name == op {
			<-release
		}
	}
	return sdktest.Fake{
		InfoF: func(context.Context) (sdk.Info, error) {
			block("Info")
			return sdk.Info{Name: "blocking", CanSave: true, CanRefresh: true}, nil
		},
		ConfigureF: func(context.Context, sdk.ConfigureRequest) error {
			block("Configure")
			return nil
		},
		ReadF: func(context.Context) (sdk.Credential, error) {
			block("Read")
			return sdk.Credential{AccessToken: "at-blocking", RefreshToken: "rt-blocking", ExpiresAt: testNow.Add(-time.Minute)}, nil
		},
		SaveF: func(context.Context, sdk.Credential) error {
			block("Save")
			return nil
		},
		RefreshF: func(context.Context, sdk.Credential) (sdk.Credential, error) {
			block("Refresh")
			return sdk.Credential{AccessToken: "at-new", RefreshToken: "rt-new", ExpiresAt: testNow.Add(time.Hour)}, nil
		},
		CheckF: func(context.Context) ([]sdk.Finding, error) {
			block("Check")
			return nil, nil
		},
	}
}

// TestInProcessCallsEndAtTheCallTimeout: an in-process provider that
// blocks, whatever the call, holds the host no longer than
// plugins.call_timeout (a Refresh: refresh.timeout and then the call
// timeout's grace), and Ctrl-C (a cancelled context) ends the call at once.
func TestInProcessCallsEndAtTheCallTimeout(t *testing.T) {
	t.Parallel()
	const callTimeout = 200 * time.Millisecond
	const bound = 5 * time.Second // generous: the old code never returned
	tests := map[string]struct {
		cancel  bool   // cancel the context instead of waiting for the timeout
		wantErr string // substring of Token's error ("" : Token succeeds)
		check   func(t *testing.T, res Result)
	}{
		"Configure":         {wantErr: "configure: no answer within the call timeout"},
		"Read":              {wantErr: "no answer within the call timeout"},
		"Read, interrupted": {cancel: true, wantErr: "context canceled"},
		"Info": {check: func(t *testing.T, res Result) {
			if res.Credential.AccessToken != "at-blocking" || !res.Degraded {
				t.Errorf("got %+v; want the stored token, degraded: without Info no refresh", res)
			}
		}},
		"Refresh": {check: func(t *testing.T, res Result) {
			if !res.Degraded || !strings.Contains(res.DegradedReason.Error(), "no answer within the call timeout") {
				t.Errorf("degraded %v (%v); want degraded, saying no answer came", res.Degraded, res.DegradedReason)
			}
		}},
		"Save": {check: func(t *testing.T, res Result) {
			if res.Credential.AccessToken != "at-new" || !res.Refreshed {
				t.Errorf("got %+v; want the refreshed token even though the save never answered", res)
			}
		}},
		"Check": {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			op, _, _ := strings.Cut(name, ",")
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			fake := blockingFake(op, release)
			cfg := testConfig(false, "blocking")
			cfg.Plugins.CallTimeout = Duration(callTimeout)
			cfg.Refresh.Timeout = Duration(callTimeout)
			h, err := New(cfg, WithBuiltins(map[string]Builtin{"blocking": {New: func() sdk.Provider { return fake }}}), WithNow(func() time.Time { return testNow }))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(callTimeout/2, cancel)
				cfg.Plugins.CallTimeout = Duration(time.Hour) // only the cancel can end it
			}
			start := time.Now()
			done := make(chan struct{})
			go func() {
				defer close(done)
				if op == "Check" {
					h.Doctor(ctx)
					return
				}
				res, err := h.Token(ctx)
				switch {
				case tc.wantErr != "":
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Errorf("Token: %v; want an error saying %q", err, tc.wantErr)
					}
					if tc.cancel && !errors.Is(err, context.Canceled) {
						t.Errorf("Token: %v; want it to match context.Canceled", err)
					}
				case err != nil:
					t.Errorf("Token: %v", err)
				case tc.check != nil:
					tc.check(t, res)
				}
			}()
			select {
			case <-done:
			case <-time.After(bound):
				t.Fatalf("the host was still waiting on a blocked %s after %s (call timeout %s)", op, time.Since(start).Round(time.Millisecond), callTimeout)
			}
		})
	}
}
