package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/credhost/credhost/sdk"
	pb "github.com/credhost/credhost/sdk/internal/credhostpb"
)

// grpcPlugin is the go-plugin glue for a Provider: in a plugin process it
// serves impl; in a client it dispenses a Provider that calls the plugin.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	// impl is the provider served; nil on the client side.
	impl sdk.Provider
}

var _ goplugin.GRPCPlugin = (*grpcPlugin)(nil)

// GRPCServer registers impl on the plugin's gRPC server.
func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterProviderServer(s, &grpcServer{impl: p.impl})
	return nil
}

// GRPCClient returns a Provider that forwards every call to the plugin.
func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcClient{client: pb.NewProviderClient(c)}, nil
}

// grpcServer adapts a Provider to the generated service.
type grpcServer struct {
	pb.UnimplementedProviderServer
	impl sdk.Provider
}

func (s *grpcServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, errToStatus(err)
	}
	return &pb.InfoResponse{Name: info.Name, Version: info.Version, CanSave: info.CanSave, CanRefresh: info.CanRefresh, LockPath: legacyLockPath(info), Locks: locksToProto(info.Locks)}, nil
}

func (s *grpcServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	cfg := req.GetConfigJson()
	if len(cfg) == 0 {
		cfg = []byte("{}")
	}
	err := s.impl.Configure(ctx, sdk.ConfigureRequest{Name: req.GetName(), Config: json.RawMessage(cfg), OAuth: oauthFromProto(req.GetOauth())})
	if err != nil {
		return nil, errToStatus(err)
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *grpcServer) Read(ctx context.Context, _ *pb.ReadRequest) (*pb.ReadResponse, error) {
	cred, err := s.impl.Read(ctx)
	if err != nil {
		return nil, errToStatus(err)
	}
	return &pb.ReadResponse{Credential: credToProto(cred)}, nil
}

func (s *grpcServer) Save(ctx context.Context, req *pb.SaveRequest) (*pb.SaveResponse, error) {
	if err := s.impl.Save(ctx, credFromProto(req.GetCredential())); err != nil {
		return nil, errToStatus(err)
	}
	return &pb.SaveResponse{}, nil
}

func (s *grpcServer) Refresh(ctx context.Context, req *pb.RefreshRequest) (*pb.RefreshResponse, error) {
	cred, err := s.impl.Refresh(ctx, credFromProto(req.GetCredential()))
	if err != nil {
		return nil, errToStatus(err)
	}
	return &pb.RefreshResponse{Credential: credToProto(cred)}, nil
}

func (s *grpcServer) Check(ctx context.Context, _ *pb.CheckRequest) (*pb.CheckResponse, error) {
	c, ok := s.impl.(sdk.Checker)
	if !ok {
		return nil, errToStatus(fmt.Errorf("%w: the plugin has no checks", sdk.ErrUnsupported))
	}
	findings, err := c.Check(ctx)
	if err != nil {
		return nil, errToStatus(err)
	}
	resp := &pb.CheckResponse{}
	for _, f := range findings {
		resp.Findings = append(resp.Findings, &pb.Finding{Severity: f.Severity, Message: f.Message, Fix: f.Fix})
	}
	return resp, nil
}

// grpcClient is the host's view of a plugin process. Every string the
// plugin sends passes known.text: the tokens that crossed this connection
// are removed, then Text.
type grpcClient struct {
	client pb.ProviderClient
	known  knownTokens
	// answers counts the calls in flight whose answer may carry a token
	// the filter does not know yet (Read, Refresh); see Settled.
	answers tokenCalls
}

// err is statusToErr with this connection's filter.
func (c *grpcClient) err(err error) error { return statusToErrText(err, c.known.text) }

var (
	_ sdk.Provider = (*grpcClient)(nil)
	_ sdk.Checker  = (*grpcClient)(nil)
	_ sdk.Locker   = (*grpcClient)(nil)
)

func (c *grpcClient) Info(ctx context.Context) (sdk.Info, error) {
	resp, err := c.client.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return sdk.Info{}, c.err(err)
	}
	return sdk.Info{Name: c.known.text(resp.GetName()), Version: c.known.text(resp.GetVersion()), CanSave: resp.GetCanSave(), CanRefresh: resp.GetCanRefresh(), LockPath: resp.GetLockPath(), Locks: locksFromProto(resp.GetLocks())}, nil
}

// legacyLockPath is what a host built before Info.Locks reads: the first
// flock of refresh scope, so such a host still serialises credhost
// processes (it knows no other kind) rather than take no lock at all.
func legacyLockPath(info sdk.Info) string {
	if info.LockPath != "" {
		return info.LockPath
	}
	for _, l := range info.Locks {
		if l.Kind == sdk.LockFlock && (l.Scope == "" || l.Scope == sdk.LockScopeRefresh) {
			return l.Path
		}
	}
	return ""
}

var lockKinds = map[sdk.LockKind]pb.LockKind{
	sdk.LockFlock:    pb.LockKind_LOCK_KIND_FLOCK,
	sdk.LockDir:      pb.LockKind_LOCK_KIND_DIR,
	sdk.LockProvider: pb.LockKind_LOCK_KIND_PROVIDER,
}

func locksToProto(locks []sdk.Lock) []*pb.Lock {
	var out []*pb.Lock
	for _, l := range locks {
		out = append(out, lockToProto(l))
	}
	return out
}

func lockToProto(l sdk.Lock) *pb.Lock {
	scope := pb.LockScope_LOCK_SCOPE_REFRESH
	if l.Scope == sdk.LockScopeSave {
		scope = pb.LockScope_LOCK_SCOPE_SAVE
	}
	// An unknown kind goes out as UNSPECIFIED, which the host refuses:
	// a lock the host cannot take must stop the refresh, not vanish.
	return &pb.Lock{Kind: lockKinds[l.Kind], Path: l.Path, StaleMs: l.Stale.Milliseconds(), Scope: scope}
}

func locksFromProto(locks []*pb.Lock) []sdk.Lock {
	var out []sdk.Lock
	for _, l := range locks {
		out = append(out, lockFromProto(l))
	}
	return out
}

func lockFromProto(l *pb.Lock) sdk.Lock {
	kind := sdk.LockKind(fmt.Sprintf("unknown kind %d", l.GetKind()))
	for k, v := range lockKinds {
		if v == l.GetKind() {
			kind = k
		}
	}
	scope := sdk.LockScopeRefresh
	switch l.GetScope() {
	case pb.LockScope_LOCK_SCOPE_REFRESH:
	case pb.LockScope_LOCK_SCOPE_SAVE:
		scope = sdk.LockScopeSave
	default:
		scope = sdk.LockScope(fmt.Sprintf("unknown scope %d", l.GetScope()))
	}
	return sdk.Lock{Kind: kind, Path: l.GetPath(), Stale: time.Duration(l.GetStaleMs()) * time.Millisecond, Scope: scope}
}

func (c *grpcClient) Configure(ctx context.Context, req sdk.ConfigureRequest) error {
	cfg := []byte(req.Config)
	if len(cfg) == 0 {
		cfg = []byte("{}")
	}
	_, err := c.client.Configure(ctx, &pb.ConfigureRequest{Name: req.Name, ConfigJson: cfg, Oauth: oauthToProto(req.OAuth)})
	return c.err(err)
}

func (c *grpcClient) Read(ctx context.Context) (sdk.Credential, error) {
	c.answers.enter()
	defer c.answers.leave()
	resp, err := c.client.Read(ctx, &pb.ReadRequest{})
	if err != nil {
		return sdk.Credential{}, c.err(err)
	}
	cred := credFromProto(resp.GetCredential())
	c.known.add(cred)
	return cred, nil
}

func (c *grpcClient) Save(ctx context.Context, cred sdk.Credential) error {
	c.known.add(cred)
	_, err := c.client.Save(ctx, &pb.SaveRequest{Credential: credToProto(cred)})
	return c.err(err)
}

func (c *grpcClient) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	c.answers.enter()
	defer c.answers.leave()
	c.known.add(cred)
	resp, err := c.client.Refresh(ctx, &pb.RefreshRequest{Credential: credToProto(cred)})
	if err != nil {
		return sdk.Credential{}, c.err(err)
	}
	fresh := credFromProto(resp.GetCredential())
	c.known.add(fresh)
	return fresh, nil
}

// Check asks the plugin for its findings; a plugin without checks answers
// sdk.ErrUnsupported.
func (c *grpcClient) Check(ctx context.Context) ([]sdk.Finding, error) {
	resp, err := c.client.Check(ctx, &pb.CheckRequest{})
	if err != nil {
		return nil, c.err(err)
	}
	var out []sdk.Finding
	for _, f := range resp.GetFindings() {
		out = append(out, sdk.Finding{Severity: c.known.text(f.GetSeverity()), Message: c.known.text(f.GetMessage()), Fix: c.known.text(f.GetFix())})
	}
	return out, nil
}
