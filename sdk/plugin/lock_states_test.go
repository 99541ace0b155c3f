package plugin

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/credhost/credhost/sdk"
	pb "github.com/credhost/credhost/sdk/internal/credhostpb"
)

// strayLockServer answers HELD, then sends state on its own, and keeps the
// stream open: a plugin written from the .proto that says RELEASED (or a
// state this host does not know) when its lock ended on its side.
type strayLockServer struct {
	pb.UnimplementedProviderServer
	state pb.LockState
}

func (s strayLockServer) Lock(stream pb.Provider_LockServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&pb.LockEvent{State: pb.LockState_LOCK_STATE_HELD}); err != nil {
		return err
	}
	if err := stream.Send(&pb.LockEvent{State: s.state}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// TestLockEndedByThePluginReadsAsLost: once HELD, any event but LOST that
// says the plugin no longer holds the lock (RELEASED before the host
// asked, a state this host does not know) reads as lost: the host must
// not refresh believing a lock nobody holds is its own.
func TestLockEndedByThePluginReadsAsLost(t *testing.T) {
	t.Parallel()
	for name, state := range map[string]pb.LockState{
		"released unasked": pb.LockState_LOCK_STATE_RELEASED,
		"unspecified":      pb.LockState_LOCK_STATE_UNSPECIFIED,
		"unknown":          pb.LockState(42),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lis := bufconn.Listen(1 << 20)
			srv := grpc.NewServer()
			pb.RegisterProviderServer(srv, strayLockServer{state: state})
			go srv.Serve(lis)
			t.Cleanup(srv.Stop)
			conn, err := grpc.NewClient("passthrough:///bufnet",
				grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
				grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			c := &grpcClient{client: pb.NewProviderClient(conn)}
			hold, err := c.Lock(context.Background(), sdk.LockRequest{Lock: fleetLock})
			if err != nil {
				t.Fatalf("lock: %v", err)
			}
			defer func() {
				// This plugin never answers a release: do not wait for it.
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				hold.Release(ctx)
			}()
			waitFor(t, hold.Lost(), "loss")
			if hold.Err() == nil {
				t.Error("lost with no reason")
			}
		})
	}
}
