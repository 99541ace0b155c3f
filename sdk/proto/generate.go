// Package credhostpb holds the Go code generated from credhost.proto, the
// public wire protocol between the credhost host and its provider plugins.
//
// Plugin authors do not import this package: sdk.Serve and the host speak it
// for them. Regenerate after editing credhost.proto with `go generate ./sdk/...`
// (needs protoc, protoc-gen-go and protoc-gen-go-grpc; see README.md).
package credhostpb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative credhost.proto
