package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/credhost/credhost/sdk"
	pb "github.com/credhost/credhost/sdk/internal/credhostpb"
)

// The Lock stream: a lock the provider holds itself (sdk.Locker), held for
// as long as the stream stays open, so a host that dies (its end of the
// stream closes) releases it. See credhost.proto.

// releaseBound bounds the release the plugin makes on its own when the
// host's side of the stream is gone: long enough for a store's unlock
// call, short enough not to keep a dying stream.
const releaseBound = 10 * time.Second

// Lock serves one Lock stream: takes the lock the first message names,
// answers HELD, reports LOST, and lets the lock go when the host asks or
// its side of the stream ends.
func (s *grpcServer) Lock(stream pb.Provider_LockServer) error {
	locker, ok := s.impl.(sdk.Locker)
	if !ok {
		return errToStatus(sdk.Unsupported("the plugin holds no locks of its own"))
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	// The hold lives as long as the stream: its context ends when the
	// host's does, and the provider lets the lock go then.
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	hold, err := locker.Lock(ctx, sdk.LockRequest{Lock: lockFromProto(first.GetLock())})
	if err != nil {
		return errToStatus(err)
	}
	releaseAlone := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseBound)
		defer cancel()
		_ = hold.Release(rctx)
	}
	if err := stream.Send(&pb.LockEvent{State: pb.LockState_LOCK_STATE_HELD}); err != nil {
		releaseAlone()
		return err
	}
	// release carries what the host said next: nil for a release (a
	// message asking for it, or its side closed), else the stream's end.
	release := make(chan error, 1)
	go func() {
		for {
			msg, err := stream.Recv()
			switch {
			case errors.Is(err, io.EOF):
				release <- nil
				return
			case err != nil:
				release <- err
				return
			case msg.GetRelease():
				release <- nil
				return
			}
		}
	}()
	lost := hold.Lost()
	for {
		select {
		case <-lost:
			lost = nil
			reason := "the provider lost the lock"
			if err := hold.Err(); err != nil {
				reason = err.Error()
			}
			if err := stream.Send(&pb.LockEvent{State: pb.LockState_LOCK_STATE_LOST, Reason: reason}); err != nil {
				releaseAlone()
				return err
			}
		case err := <-release:
			if err != nil {
				releaseAlone() // the host is gone
				return err
			}
			if err := hold.Release(stream.Context()); err != nil {
				return errToStatus(err)
			}
			return stream.Send(&pb.LockEvent{State: pb.LockState_LOCK_STATE_RELEASED})
		}
	}
}

// Lock opens a Lock stream and returns once the plugin holds the lock. The
// stream lives as long as ctx (the hold's lifetime) or until Release.
func (c *grpcClient) Lock(ctx context.Context, req sdk.LockRequest) (sdk.LockHold, error) {
	sctx, cancel := context.WithCancel(ctx)
	fail := func(err error) (sdk.LockHold, error) {
		cancel()
		cerr := ctx.Err()
		if d, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(d) {
			// The plugin's side saw the deadline first (gRPC sends it
			// along) and cancelled the stream.
			cerr = context.DeadlineExceeded
		}
		if cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return nil, err
	}
	stream, err := c.client.Lock(sctx)
	if err != nil {
		return fail(statusToErr(err))
	}
	if err := stream.Send(&pb.LockRequest{Lock: lockToProto(req.Lock)}); err != nil {
		// The stream ended; its status comes with the next receive.
		if _, rerr := stream.Recv(); rerr != nil {
			err = rerr
		}
		return fail(statusToErr(err))
	}
	ev, err := stream.Recv()
	if err != nil {
		return fail(statusToErr(err))
	}
	if ev.GetState() != pb.LockState_LOCK_STATE_HELD {
		return fail(fmt.Errorf("the plugin answered %s instead of holding the %s", ev.GetState(), req.Lock))
	}
	h := &streamHold{lock: req.Lock, stream: stream, cancel: cancel, ctx: sctx, lostCh: make(chan struct{}), done: make(chan struct{})}
	go h.watch()
	return h, nil
}

// streamHold is the host's side of a lock held over a Lock stream.
type streamHold struct {
	lock   sdk.Lock
	stream pb.Provider_LockClient
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	lostErr   error
	releasing bool
	endErr    error // how the stream ended, when not as asked
	lostCh    chan struct{}
	done      chan struct{} // closed when the stream has ended
	once      sync.Once
}

var _ sdk.LockHold = (*streamHold)(nil)

// watch reads the plugin's events until the stream ends. A stream that
// ends before the host asked for a release (the plugin died, the
// connection broke) means the lock is no longer held.
func (h *streamHold) watch() {
	defer close(h.done)
	for {
		ev, err := h.stream.Recv()
		if err != nil {
			h.mu.Lock()
			defer h.mu.Unlock()
			if !errors.Is(err, io.EOF) {
				h.endErr = statusToErr(err)
			}
			if !h.releasing && h.ctx.Err() == nil {
				reason := "the plugin ended the lock's stream"
				if h.endErr != nil {
					reason += ": " + h.endErr.Error()
				}
				h.loseLocked(fmt.Errorf("%s: %s", h.lock, reason))
			}
			return
		}
		// Once HELD, every event but HELD again says the plugin no
		// longer holds the lock: LOST, but also RELEASED before the host
		// asked for it (a plugin whose lock ended on its side), or a
		// state this host does not know.
		state := ev.GetState()
		if state == pb.LockState_LOCK_STATE_HELD {
			continue
		}
		h.mu.Lock()
		if !h.releasing || state == pb.LockState_LOCK_STATE_LOST {
			reason := Text(ev.GetReason())
			switch {
			case state != pb.LockState_LOCK_STATE_LOST:
				reason = fmt.Sprintf("the plugin said %s while the host held it", state)
			case reason == "":
				reason = "the plugin lost it"
			}
			h.loseLocked(fmt.Errorf("%s: %s", h.lock, reason))
		}
		h.mu.Unlock()
	}
}

// loseLocked records the first loss; h.mu is held.
func (h *streamHold) loseLocked(err error) {
	if h.lostErr == nil {
		h.lostErr = err
		close(h.lostCh)
	}
}

func (h *streamHold) Lost() <-chan struct{} { return h.lostCh }

func (h *streamHold) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lostErr
}

// Release asks the plugin to let the lock go and waits for the stream to
// end, or for ctx; then it closes the stream, which releases the lock in
// any case.
func (h *streamHold) Release(ctx context.Context) error {
	var err error
	h.once.Do(func() {
		h.mu.Lock()
		h.releasing = true
		h.mu.Unlock()
		if serr := h.stream.Send(&pb.LockRequest{Release: true}); serr == nil {
			_ = h.stream.CloseSend()
		}
		select {
		case <-h.done:
			h.mu.Lock()
			err = h.endErr
			h.mu.Unlock()
		case <-ctx.Done():
			err = fmt.Errorf("release the %s: %w", h.lock, ctx.Err())
		}
		h.cancel()
	})
	return err
}
