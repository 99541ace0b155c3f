//go:build unix && !linux

package sdk

// notDumpable has no equivalent here beyond RLIMIT_CORE.
func notDumpable() {}
