//go:build !linux

package host

// dumpable is unknown outside Linux.
func dumpable() string { return "" }
