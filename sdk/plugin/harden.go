package plugin

// DisableCoreDumps keeps the process's memory, credentials included, out
// of core dumps: it sets RLIMIT_CORE to 0 (soft and hard, so no child
// raises it either) and, on Linux, marks the process not dumpable (which
// also keeps other processes of the same user from attaching to it or
// reading its memory through /proc). Serve calls it; a program that holds
// credentials outside Serve (credhost itself) calls it first thing in main.
// Failures are ignored: it is a hardening, not a requirement.
func DisableCoreDumps() { disableCoreDumps() }
