package resolvers

import (
	"context"
	"net/http"
	"slices"
	"sync"

	"livedrops/domain"
)

// MaxSubscriptionsPerStream caps the subscriptions open at once on one
// connection: a WebSocket multiplexes a client's subscriptions, and each one
// holds state in the hub, so one connection must not hold without bound.
const MaxSubscriptionsPerStream = 100

// ErrSlowStream is why a stream was ended for a subscriber that fell behind.
// Its SlowStream method tells the transport to close the WebSocket with
// "try again later" (1013) rather than a normal closure.
var ErrSlowStream error = slowStream{}

type slowStream struct{}

func (slowStream) Error() string { return "a subscriber on this connection fell too far behind" }

// SlowStream marks the cause for the transport (httpapi.SlowStream).
func (slowStream) SlowStream() {}

// stream is one request or connection carrying subscriptions: a WebSocket,
// an SSE request, or any other request (which carries none).
type stream struct {
	end context.CancelCauseFunc
	mu  sync.Mutex
	// open are the contexts of the stream's subscriptions; those that are
	// done are dropped at the next count. A context is done as soon as its
	// subscription is stopped, so a client that stops one and subscribes
	// again at once always finds the room.
	open []context.Context
}

type streamKey struct{}

// Streams gives every request a stream: its subscriptions are counted
// against MaxSubscriptionsPerStream, and EndStream can end it. It goes in
// httpapi's PerRequest chain, so a WebSocket's subscriptions share the stream
// of its upgrade request.
func Streams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		ctx = context.WithValue(ctx, streamKey{}, &stream{end: cancel})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// EndStream ends the stream a subscription's context belongs to: a WebSocket
// is closed, an SSE response finished. It is the hub's OnSlowConsumer: a
// subscriber that fell behind means its connection does not keep up, and
// its client, reconnecting, starts again from a fresh snapshot.
func EndStream(ctx context.Context, _ string) {
	if s, ok := ctx.Value(streamKey{}).(*stream); ok {
		s.end(ErrSlowStream)
	}
}

// openSubscription counts a subscription against its stream's cap for as
// long as ctx, the subscription's context, lasts; past the cap it answers
// LIMIT_EXCEEDED.
func openSubscription(ctx context.Context) error {
	s, ok := ctx.Value(streamKey{}).(*stream)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = slices.DeleteFunc(s.open, func(c context.Context) bool { return c.Err() != nil })
	if len(s.open) >= MaxSubscriptionsPerStream {
		return domain.Errorf(domain.LimitExceeded, "at most %d subscriptions may be open on one connection", MaxSubscriptionsPerStream)
	}
	s.open = append(s.open, ctx)
	return nil
}
