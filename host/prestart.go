package host

import (
	"context"
	"runtime"
)

// startWindow bounds how many plugin processes one walk starts at once, so
// a chain of process plugins pays about one start instead of one per
// provider. A start is mostly CPU (the plugin's initialisation and its
// TLS key), so starts beyond the machine's cores finish no sooner and only
// delay the provider the walk waits for: the bound is the number of cores,
// at least 2 (a start also waits on the handshake) and at most 4.
var startWindow = min(max(runtime.NumCPU(), 2), 4)

// prestart is a plugin process started ahead of the walk. The walk hands it
// to its member when it reaches that provider (take); one the walk never
// reaches is ended (end).
type prestart struct {
	m     *member
	done  chan struct{}
	o     opened
	abort context.CancelFunc
}

// startEarly begins m's start and configuration in the background.
func startEarly(ctx context.Context, m *member) *prestart {
	abort, cancel := context.WithCancel(context.Background())
	p := &prestart{m: m, done: make(chan struct{}), abort: cancel}
	go func() {
		defer close(p.done)
		p.o = m.open(ctx, abort)
	}()
	return p
}

// finished reports that the start is done, well or not.
func (p *prestart) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// take waits for the start and makes it the member's provider, with its
// error, exactly as a start on reaching the provider would have; a member
// that another walk started meanwhile keeps its own, and this one ends.
func (p *prestart) take() {
	<-p.done
	p.abort()
	used := false
	p.m.once.Do(func() {
		p.m.adopt(p.o)
		used = true
	})
	if !used {
		p.end()
	}
}

// end ends the start: a process still starting is killed, one that
// started is ended as Close ends it. A start that failed cleaned up after
// itself, and its error is dropped: the walk never needed that provider.
func (p *prestart) end() {
	p.abort()
	<-p.done
	if p.o.client != nil {
		p.o.client.end()
	}
}

// startAhead starts the plugin processes of one walk ahead of it, at most
// startWindow at a time, in chain order, never past the provider that
// yielded the last credential (its token is likely still there) until the
// walk itself goes past it. In-process providers are left to the walk:
// they cost no start.
type startAhead struct {
	h       *Host
	ctx     context.Context
	started []*prestart
	next    int // the next member to consider
	limit   int // the last member that may be started ahead
}

func (h *Host) startAhead(ctx context.Context) *startAhead {
	a := &startAhead{h: h, ctx: ctx, started: make([]*prestart, len(h.members)), limit: len(h.members) - 1}
	if w := int(h.winner.Load()); w > 0 {
		a.limit = w - 1
	}
	return a
}

// reach is called as the walk reaches member i: from i on, in chain
// order, it starts members not started yet while fewer than startWindow
// starts are under way, then hands member i its start if it was begun
// ahead.
func (a *startAhead) reach(i int) {
	if i > a.limit {
		a.limit = len(a.started) - 1
	}
	running := 0
	for _, p := range a.started[i:] {
		if p != nil && !p.finished() {
			running++
		}
	}
	for a.next = max(a.next, i); a.next < len(a.started) && a.next <= a.limit && running < startWindow; a.next++ {
		// One start ahead per member across concurrent walks: a walk
		// that finds it claimed starts it on reaching it, as without
		// starts ahead (at most one duplicate, which take ends).
		if m := a.h.members[a.next]; m.process && !m.begun.Load() && m.claimed.CompareAndSwap(false, true) {
			a.started[a.next] = startEarly(a.ctx, m)
			running++
		}
	}
	if p := a.started[i]; p != nil {
		a.started[i] = nil
		p.take()
	}
}

// release ends, in the background, every start the walk did not need;
// Close waits for them.
func (a *startAhead) release() {
	for i, p := range a.started {
		if p == nil {
			continue
		}
		a.started[i] = nil
		a.h.ending.Add(1)
		go func() {
			defer a.h.ending.Done()
			p.end()
			p.m.claimed.Store(false) // a later walk may start it ahead again
		}()
	}
}
