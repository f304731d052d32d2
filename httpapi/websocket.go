package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// CloseTryAgainLater (RFC 6455's 1013) closes a WebSocket whose stream was
// ended for falling behind: the client should reconnect, and its
// subscriptions start again from a fresh snapshot.
const CloseTryAgainLater = 1013

// wsWriteTimeout bounds one WebSocket send: a client that stops reading
// fills its TCP window, and the send would otherwise block forever, holding
// the connection's lock and every other message of it.
const wsWriteTimeout = 10 * time.Second

// SlowStream is the cancellation cause that ends a stream for falling behind
// (set by whoever cancels the request's context); its WebSocket closes with
// CloseTryAgainLater instead of a normal closure.
type SlowStream interface {
	error
	SlowStream()
}

// boundedWebsocket accepts WebSockets through inner, each send bounded by
// writeTimeout.
type boundedWebsocket struct {
	inner        transport.WebsocketImplementation
	writeTimeout time.Duration
}

func (b boundedWebsocket) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := b.inner.Accept(w, r, o)
	if err != nil {
		return nil, err
	}
	return &boundedConn{WebsocketConn: conn, ctx: r.Context(), writeTimeout: b.writeTimeout}, nil
}

// boundedConn is a WebSocket whose sends give up (closing the connection)
// after writeTimeout, and whose close says why the stream ended.
type boundedConn struct {
	transport.WebsocketConn
	ctx          context.Context
	writeTimeout time.Duration
}

func (c *boundedConn) WriteJSON(v any) error {
	// Closing is the only way to abandon a write the peer does not take.
	t := time.AfterFunc(c.writeTimeout, func() { _ = c.WebsocketConn.Close() })
	defer t.Stop()
	return c.WebsocketConn.WriteJSON(v)
}

func (c *boundedConn) WriteClose(code int, message string) error {
	var slow SlowStream
	if errors.As(context.Cause(c.ctx), &slow) {
		code, message = CloseTryAgainLater, "too slow: reconnect"
	}
	return c.WebsocketConn.WriteClose(code, message)
}

// The transport enforces read limits and pong deadlines through these
// optional interfaces; forward them to the wrapped connection.

func (c *boundedConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

func (c *boundedConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

// boundSSEWrites gives every write of a server-sent-events response a
// deadline, so a client that stopped reading is cut off instead of holding
// its subscriptions (and the hub's memory for them) forever.
func boundSSEWrites(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			w = &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout}
		}
		next.ServeHTTP(w, r)
	})
}

type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.ResponseWriter.Write(p)
}

func (d *deadlineWriter) Flush() {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	_ = d.rc.Flush()
}

func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
