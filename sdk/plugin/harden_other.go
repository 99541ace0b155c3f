//go:build unix && !linux

package plugin

// notDumpable has no equivalent here beyond RLIMIT_CORE.
func notDumpable() {}
