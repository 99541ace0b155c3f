// Package credhostpb holds the Go code generated from sdk/proto/credhost.proto,
// the public wire protocol between the credhost host and its provider plugins.
//
// The .proto file is public (a plugin in another language compiles it); the
// Go code generated from it is internal, so its types are not part of the
// SDK's API: only sdk/plugin speaks it, converting to and from the sdk types.
// Regenerate after editing credhost.proto with
// `go generate ./sdk/internal/credhostpb` (needs protoc, protoc-gen-go and
// protoc-gen-go-grpc; see README.md).
package credhostpb

//go:generate protoc --proto_path=../../proto --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative credhost.proto
