package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/credhost/credhost/sdk"
	pb "github.com/credhost/credhost/sdk/internal/credhostpb"
)

// errorCodes maps each sentinel to the gRPC code it travels as.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{sdk.ErrNotFound, codes.NotFound},
	{sdk.ErrUnsupported, codes.Unimplemented},
	{sdk.ErrInvalidConfig, codes.InvalidArgument},
	{sdk.ErrInvalidGrant, codes.PermissionDenied},
}

// errToStatus turns a provider's error into a gRPC status error, so the
// sentinel it wraps survives the process boundary. The message is the error's
// text as the provider wrote it (for an *Error, the reason alone: the code
// carries the kind); a hint travels as an ErrorInfo detail (see hintInfo).
func errToStatus(err error) error {
	if err == nil {
		return nil
	}
	// A status the provider made itself travels as it is. One it merely
	// wraps came from its own backend (a store reached over gRPC), and
	// Unavailable from there would read on the host as this plugin having
	// crashed: both travel as the provider's error, by the mapping below.
	if s, ok := err.(interface{ GRPCStatus() *status.Status }); ok && !isSentinel(err) && s.GRPCStatus().Code() != codes.Unavailable {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	code := codes.Unknown
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			code = e.code
			break
		}
	}
	st := status.New(code, err.Error())
	if d := sdk.RetryDelay(err); d > 0 {
		if withInfo, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}); derr == nil {
			st = withInfo
		}
	}
	if h := sdk.Hint(err); h != "" {
		info := &errdetails.ErrorInfo{Reason: hintReason, Domain: hintDomain, Metadata: map[string]string{hintKey: h}}
		if withInfo, derr := st.WithDetails(info); derr == nil {
			st = withInfo
		}
	}
	return st.Err()
}

// A hint crosses the boundary as a google.rpc.ErrorInfo detail with this
// domain and reason, the text under metadata key "hint": no change to the
// plugin protocol, and a host built before hints ignores the detail.
const (
	hintDomain = "credhost"
	hintReason = "HINT"
	hintKey    = "hint"
)

func isSentinel(err error) bool {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return true
		}
	}
	return false
}

// statusToErr turns a gRPC error from a plugin back into an error that wraps
// the matching sentinel and reads as the provider's message (made safe by
// Text).
func statusToErr(err error) error { return statusToErrText(err, Text) }

// statusToErrText is statusToErr with text as the filter for the plugin's
// strings (the message and each line of the hint).
func statusToErrText(err error, text func(string) string) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	re := &remoteError{msg: text(st.Message())}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			re.retryDelay = d.GetRetryDelay().AsDuration()
		case *errdetails.ErrorInfo:
			if d.GetDomain() == hintDomain && d.GetReason() == hintReason {
				lines := strings.Split(d.GetMetadata()[hintKey], "\n")
				for i, l := range lines {
					lines[i] = text(l)
				}
				re.hint = strings.Join(lines, "\n")
			}
		}
	}
	for _, e := range errorCodes {
		if st.Code() == e.code {
			re.sentinel = e.err
			re.msg = reasonOnly(re.msg, e.err)
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		re.sentinel = context.DeadlineExceeded
	case codes.Canceled:
		re.sentinel = context.Canceled
	case codes.Unavailable:
		re.msg = fmt.Sprintf("plugin unavailable (exited or crashed?): %s", text(st.Message()))
	}
	return re
}

// reasonOnly returns a plugin's message without the words of the sentinel
// its code already carries: a plugin built before sdk.NotFound and its kin,
// or one written in another language after Go's habit, sends "no credential
// found: $X is not set" where sdk.NotFound sends "$X is not set". The code
// decides what the error means; the words would only read twice ("no
// credential found; ... (empty): no credential found: ..."). A message that
// is nothing but the words is kept.
func reasonOnly(msg string, sentinel error) string {
	words := sentinel.Error()
	if len(msg) <= len(words) || !strings.EqualFold(msg[:len(words)], words) {
		return msg
	}
	rest := strings.TrimLeft(msg[len(words):], " ")
	after, ok := strings.CutPrefix(rest, ":")
	if !ok {
		return msg
	}
	if after = strings.TrimSpace(after); after == "" {
		return msg
	}
	return after
}

// remoteError is an error that came back from a plugin: its text is the
// plugin's message (without the sentinel's words: see reasonOnly), errors.Is
// finds the sentinel it was sent as (if any), sdk.RetryDelay the server's
// Retry-After it carried and Hint its hint.
type remoteError struct {
	msg        string
	sentinel   error
	retryDelay time.Duration
	hint       string
}

func (e *remoteError) Error() string             { return e.msg }
func (e *remoteError) Unwrap() error             { return e.sentinel }
func (e *remoteError) RetryDelay() time.Duration { return e.retryDelay }
func (e *remoteError) Hint() string              { return e.hint }

func credToProto(c sdk.Credential) *pb.Credential {
	out := &pb.Credential{
		AccessToken:  c.AccessToken,
		RefreshToken: c.RefreshToken,
		Scopes:       c.Scopes,
		Metadata:     c.Metadata,
	}
	if !c.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(c.ExpiresAt)
	}
	return out
}

func credFromProto(c *pb.Credential) sdk.Credential {
	if c == nil {
		return sdk.Credential{}
	}
	out := sdk.Credential{
		AccessToken:  c.GetAccessToken(),
		RefreshToken: c.GetRefreshToken(),
		Scopes:       c.GetScopes(),
		Metadata:     c.GetMetadata(),
	}
	if c.ExpiresAt != nil {
		out.ExpiresAt = c.ExpiresAt.AsTime()
	}
	if len(out.Scopes) == 0 {
		out.Scopes = nil
	}
	if len(out.Metadata) == 0 {
		out.Metadata = nil
	}
	return out
}

func oauthToProto(o sdk.OAuthConfig) *pb.OAuthConfig {
	return &pb.OAuthConfig{
		TokenUrl:                o.TokenURL,
		ClientId:                o.ClientID,
		DefaultExpiresInSeconds: int64(o.DefaultExpiresIn / time.Second),
		BodyFormat:              o.BodyFormat,
		Scopes:                  o.Scopes,
		TimeoutMs:               o.Timeout.Milliseconds(),
		ClientIdMetadata:        o.ClientIDMetadata,
		KeepScopes:              o.KeepScopes,
	}
}

func oauthFromProto(o *pb.OAuthConfig) sdk.OAuthConfig {
	if o == nil {
		return sdk.OAuthConfig{}
	}
	out := sdk.OAuthConfig{
		TokenURL:         o.GetTokenUrl(),
		ClientID:         o.GetClientId(),
		DefaultExpiresIn: time.Duration(o.GetDefaultExpiresInSeconds()) * time.Second,
		BodyFormat:       o.GetBodyFormat(),
		Scopes:           o.GetScopes(),
		Timeout:          time.Duration(o.GetTimeoutMs()) * time.Millisecond,
		ClientIDMetadata: o.GetClientIdMetadata(),
		KeepScopes:       o.GetKeepScopes(),
	}
	if len(out.Scopes) == 0 {
		out.Scopes = nil
	}
	if len(out.KeepScopes) == 0 {
		out.KeepScopes = nil
	}
	return out
}

// maxPluginText caps a string a plugin sends for a message (an error, a
// finding): enough for a real explanation with a path or two, short
// enough that a plugin cannot flood the user's terminal or log.
const maxPluginText = 1 << 10

// Text makes a string from a plugin process safe for a message or a log
// line: characters that are not printable (a terminal escape, a newline
// that forges a log line) become spaces, and it is cut to 1 KiB. Every
// string a plugin sends passes through it before a person can see it: the
// client does it for errors, findings and Info, and the host for the
// plugin's log lines.
func Text(s string) string {
	cut := len(s) > maxPluginText
	if cut {
		n := maxPluginText
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	if cut {
		s += "…"
	}
	return s
}
