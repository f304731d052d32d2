package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
// writeTimeout, each connection kept alive every keepAlive (when set).
type boundedWebsocket struct {
	inner        transport.WebsocketImplementation
	writeTimeout time.Duration
	keepAlive    time.Duration
}

func (b boundedWebsocket) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := b.inner.Accept(w, r, o)
	if err != nil {
		return nil, err
	}
	c := &boundedConn{WebsocketConn: conn, ctx: r.Context(), writeTimeout: b.writeTimeout}
	if b.keepAlive > 0 {
		c.keepAlive(b.keepAlive)
	}
	return c, nil
}

// boundedConn is a WebSocket whose sends give up (closing the connection)
// after writeTimeout, and whose close says why the stream ended.
type boundedConn struct {
	transport.WebsocketConn
	ctx          context.Context
	writeTimeout time.Duration

	// Keep-alive: a timer, not a goroutine per connection while it waits
	// (the transport's own keep-alive holds one for every connection).
	kaMu      sync.Mutex
	kaTimer   *time.Timer
	kaStopped bool
	// heard: a message arrived since the last keep-alive; unanswered counts
	// the pings in a row that were not followed by one.
	heard      atomic.Bool
	unanswered atomic.Int32
}

// Keep-alive messages: graphql-transport-ws pings (the client must pong),
// the legacy graphql-ws sends "ka" (nothing comes back).
var (
	wsPing      = map[string]string{"type": "ping"}
	wsKeepAlive = map[string]string{"type": "ka"}
)

// unansweredPings is how many pings in a row a graphql-transport-ws client
// may leave without a word before it is taken for dead and disconnected:
// two intervals, as the transport's own ping deadline allows.
const unansweredPings = 2

// keepAlive sends a keep-alive every interval until the connection closes:
// a ping for graphql-transport-ws, after which a client that sent nothing
// (no pong, nothing else) for unansweredPings pings is disconnected, and a
// "ka" for the legacy graphql-ws.
func (c *boundedConn) keepAlive(every time.Duration) {
	probe := c.Subprotocol() == "graphql-transport-ws"
	msg := wsKeepAlive
	if probe {
		msg = wsPing
	}
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	c.kaTimer = time.AfterFunc(every, func() {
		if probe {
			if c.heard.Swap(false) {
				c.unanswered.Store(0)
			} else if c.unanswered.Add(1) >= unansweredPings {
				_ = c.WebsocketConn.Close() // the transport's read ends, and with it the connection
				return
			}
		}
		if err := c.WriteJSON(msg); err != nil {
			return
		}
		c.kaMu.Lock()
		defer c.kaMu.Unlock()
		if !c.kaStopped {
			c.kaTimer.Reset(every)
		}
	})
	// The request's context ends when the transport is done with the socket.
	context.AfterFunc(c.ctx, c.stopKeepAlive)
}

func (c *boundedConn) stopKeepAlive() {
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	c.kaStopped = true
	if c.kaTimer != nil {
		c.kaTimer.Stop()
	}
}

// NextReader notes that the client is alive whenever a message arrives.
func (c *boundedConn) NextReader() (int, io.Reader, error) {
	typ, r, err := c.WebsocketConn.NextReader()
	if err == nil {
		c.heard.Store(true)
	}
	return typ, r, err
}

func (c *boundedConn) Close() error {
	c.stopKeepAlive()
	return c.WebsocketConn.Close()
}

func (c *boundedConn) WriteJSON(v any) error {
	// Closing is the only way to abandon a write the peer does not take.
	t := time.AfterFunc(c.writeTimeout, func() { _ = c.WebsocketConn.Close() })
	defer t.Stop()
	return c.WebsocketConn.WriteJSON(v)
}

func (c *boundedConn) WriteClose(code int, message string) error {
	c.stopKeepAlive()
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
