package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/credhost/credhost/sdk"
)

// TestConfigErrors: every bad config names its key, and a password in
// the config is refused whatever its value.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ config, want string }{
		"password inline":        {`{"endpoints":["http://127.0.0.1:1"],"key":"/k","password":"hunter2"}`, `key "password": never put`},
		"no endpoints":           {`{"key":"/k"}`, `key "endpoints": required`},
		"endpoint with password": {`{"endpoints":["http://u:pw@127.0.0.1:1"],"key":"/k"}`, `must not carry a user`},
		"no key":                 {`{"endpoints":["http://127.0.0.1:1"]}`, `key "key": required`},
		"username no env":        {`{"endpoints":["http://127.0.0.1:1"],"key":"/k","username":"u"}`, `key "password_env": required`},
		"env unset":              {`{"endpoints":["http://127.0.0.1:1"],"key":"/k","username":"u","password_env":"NOPE_UNSET"}`, `$NOPE_UNSET is not set`},
		"tls without https":      {`{"endpoints":["http://127.0.0.1:1"],"key":"/k","ca_file":"/x"}`, `no endpoint is https://`},
		"cert without key":       {`{"endpoints":["https://127.0.0.1:1"],"key":"/k","cert_file":"/x"}`, `cert_file and key_file go together`},
		"lock ttl fraction":      {`{"endpoints":["http://127.0.0.1:1"],"key":"/k","lock_ttl":"1500ms"}`, `key "lock_ttl"`},
		"mixed schemes":          {`{"endpoints":["http://127.0.0.1:1","https://127.0.0.1:2"],"key":"/k"}`, `all http:// or all https://`},
		"bad url with password":  {`{"endpoints":["etcd://u:hunter2@127.0.0.1:1"],"key":"/k"}`, `is not an http:// or https:// URL`},
		"unknown key":            {`{"endpoints":["http://127.0.0.1:1"],"key":"/k","pasword":"x"}`, `pasword`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newProvider()
			p.lookupEnv = func(string) (string, bool) { return "", false }
			err := p.Configure(context.Background(), sdk.ConfigureRequest{Name: "fleet", Config: []byte(tc.config)})
			if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an invalid config naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), ":pw@") {
				t.Fatalf("the error quotes the password: %v", err)
			}
		})
	}
}

// TestTransient: what is tried again (a member going away, a cluster
// between leaders) and what is final (refusals, the caller's deadline).
func TestTransient(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"member gone":          {status.Error(codes.Unavailable, "closing transport"), true},
		"member shutting down": {status.Error(codes.Unknown, "raft: stopped"), true},
		"request timed out":    {rpctypes.ErrTimeout, true},
		"no leader":            {rpctypes.ErrNoLeader, true},
		"leader changed":       {rpctypes.ErrLeaderChanged, true},
		"bad password":         {rpctypes.ErrAuthFailed, false},
		"no permission":        {rpctypes.ErrPermissionDenied, false},
		"caller's deadline":    {context.DeadlineExceeded, false},
		"bad request":          {status.Error(codes.InvalidArgument, "bad"), false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("%s: transient = %v; want %v", name, got, tc.want)
		}
	}
}
