//go:build linux

package main

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/credhost/credhost/sdk"
)

// BenchmarkColdToken times whole processes against one three-member etcd
// cluster holding a valid (unexpired) login, each figure next to its
// floors measured in the same run:
//
//	spawn/true        a bare process spawn (/bin/true)
//	etcd/bareget      a Go program that connects with etcd's client and
//	                  reads the key (testdata/bareget): the floor
//	credhost/etcd     `credhost token` whose chain is the etcd plugin:
//	                  credhost, the plugin process, its handshake, one
//	                  read through etcd
//
// Run with: go test -run '^$' -bench ColdToken -count 10 ./plugins/etcd | benchstat -
func BenchmarkColdToken(b *testing.B) {
	c := startCluster(b, 3)
	key := newKey(b)
	c.seed(key, sdk.Credential{AccessToken: "bench-access", RefreshToken: "bench-refresh", ExpiresAt: time.Now().Add(8 * time.Hour)})
	m := newMachine(b, fleetConfig{cluster: c, key: key, tokenURL: "http://127.0.0.1:1/token"})
	bareget := filepath.Join(b.TempDir(), "bareget")
	if out, err := exec.Command("go", "build", "-o", bareget, "./testdata/bareget").CombinedOutput(); err != nil {
		b.Fatalf("build bareget: %v\n%s", err, out)
	}
	cases := []struct {
		name string
		cmd  func() *exec.Cmd
	}{
		{"spawn/true", func() *exec.Cmd { return exec.Command("/bin/true") }},
		{"etcd/bareget", func() *exec.Cmd { return exec.Command(bareget, append([]string{key}, c.Endpoints()...)...) }},
		{"credhost/etcd", func() *exec.Cmd { return m.command("token") }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if out, err := tc.cmd().CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", tc.name, err, out)
				}
			}
		})
	}
}
