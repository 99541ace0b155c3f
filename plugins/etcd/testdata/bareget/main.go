// Command bareget is the floor a cold `credhost token` through the etcd
// plugin is measured against: a Go program that connects to etcd with the
// same client and reads one key, nothing else.
//
//	bareget KEY ENDPOINT...
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bareget KEY ENDPOINT...")
		os.Exit(2)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: os.Args[2:], DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, os.Args[1])
	if err != nil || len(resp.Kvs) == 0 {
		fmt.Fprintln(os.Stderr, "get:", err)
		os.Exit(1)
	}
	fmt.Println(len(resp.Kvs[0].Value))
}
