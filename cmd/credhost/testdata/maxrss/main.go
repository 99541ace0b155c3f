//go:build linux

// Command maxrss runs a program and prints its peak resident memory, so a
// benchmark can read a child's own peak. The test binary cannot: Go starts
// a child with vfork, and Linux folds the memory the parent had at the
// child's exec into the child's ru_maxrss, so every child of a large
// process reports at least the parent's size. This program is small, and
// its child's ru_maxrss is at least this program's own size (what
// `maxrss /bin/true` reports) and otherwise the child's own peak.
//
// Usage: maxrss PROGRAM [ARG...]; the program's output passes through, and
// the last line on standard error is "maxrss-kB N".
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: maxrss PROGRAM [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintf(os.Stderr, "maxrss: %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "maxrss-kB %d\n", cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
	os.Exit(cmd.ProcessState.ExitCode())
}
