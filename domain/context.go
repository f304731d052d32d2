package domain

import (
	"context"
	"net/netip"
	"time"
)

// Viewer is who is asking: the authenticated user of a request or subscription.
type Viewer struct {
	UserID int64
	Handle string
	// Session identifies the token the viewer signed in with (its jti), so
	// logging out can revoke that session alone; Expires is when it ends.
	Session string
	Expires time.Time
}

type ctxKey int

const (
	viewerKey ctxKey = iota
	requestIDKey
	clientAddrKey
)

// WithViewer returns ctx carrying the authenticated viewer.
func WithViewer(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, viewerKey, v)
}

// ViewerFrom returns the viewer of ctx, or nil for an anonymous request.
func ViewerFrom(ctx context.Context) *Viewer {
	v, _ := ctx.Value(viewerKey).(*Viewer)
	return v
}

// RequireViewer returns the viewer of ctx, or UNAUTHENTICATED.
func RequireViewer(ctx context.Context) (*Viewer, error) {
	if v := ViewerFrom(ctx); v != nil {
		return v, nil
	}
	return nil, Errorf(Unauthenticated, "sign in first")
}

// WithRequestID returns ctx carrying the request id used in logs and audit rows.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithClientAddr returns ctx carrying the address of the client that sent the
// request (see httpapi's trusted proxies).
func WithClientAddr(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddrKey, a)
}

// ClientAddr returns the client address of ctx; not valid when unknown.
func ClientAddr(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(clientAddrKey).(netip.Addr)
	return a
}
