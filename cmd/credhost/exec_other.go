//go:build !unix

package main

import (
	"os"
	"os/signal"
)

// forwarder, outside Unix, only keeps credhost alive through Ctrl-C: the
// console delivers it to every process attached to it, the command
// included.
type forwarder struct{ ch chan os.Signal }

func newForwarder() *forwarder { return &forwarder{ch: make(chan os.Signal, 1)} }

func (f *forwarder) listen()           { signal.Notify(f.ch, os.Interrupt) }
func (f *forwarder) start(*os.Process) {}
func (f *forwarder) stop()             {}

// exitStatus is the command's exit code.
func exitStatus(ps *os.ProcessState) int { return ps.ExitCode() }
