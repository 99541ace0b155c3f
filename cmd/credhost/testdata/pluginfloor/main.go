// Command pluginfloor is a floor for a cold `credhost token`: a Go program
// that links hashicorp/go-plugin (and through it gRPC and protobuf) and does
// nothing. Their package initialisation runs before main in any binary that
// can speak the plugin protocol, so no such binary starts faster.
package main

import (
	_ "github.com/hashicorp/go-plugin"
)

func main() {}
