package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"livedrops/domain"
	"livedrops/logging"
	"livedrops/metrics"
)

// GraphQL over WebSocket, both subprotocols:
//
//   - graphql-transport-ws (the graphql-ws library): connection_init and
//     connection_ack, subscribe, next, error, complete, ping and pong.
//   - graphql-ws, the legacy subscriptions-transport-ws protocol (also what a
//     client that names no subprotocol gets): connection_init,
//     connection_ack, start, data, error, complete, stop, "ka" keep-alives,
//     connection_error and connection_terminate.
//
// Every operation runs through gqlgen's executor as over HTTP (its error
// presenter, recover func and middleware included); queries and mutations
// are answered on the socket too, then completed.
//
// A connection holds one goroutine, the one net/http serves its upgrade
// request on, which reads; each running operation holds one more. The init
// timeout and the keep-alive share one timer, and the end of the request's
// context closes the socket through a callback, not a goroutine waiting.

// Subprotocols. A client that offers both gets graphql-ws, as from gqlgen's
// own transport.
const (
	subprotocolGraphQLWS   = "graphql-ws"
	subprotocolTransportWS = "graphql-transport-ws"
)

// Close codes. The 44xx are graphql-transport-ws's; the legacy protocol
// names none, and gets the same.
const (
	// CloseTryAgainLater (RFC 6455's 1013) closes a WebSocket whose stream
	// was ended for falling behind: the client should reconnect, and its
	// subscriptions start again from a fresh snapshot.
	CloseTryAgainLater = 1013

	closeNormal           = 1000
	closeBadRequest       = 4400 // a message that is not JSON or not of the protocol
	closeUnauthorized     = 4401 // an operation before connection_ack, or the session ended
	closeForbidden        = 4403 // connection_init refused
	closeInitTimeout      = 4408 // no connection_init in time
	closeSubscriberExists = 4409 // an operation id already running
	closeTooManyInits     = 4429 // a second connection_init
)

// wsWriteTimeout bounds one WebSocket send: a client that stops reading
// fills its TCP window, and the send would otherwise block forever, holding
// the connection's lock and every other message of it.
const wsWriteTimeout = 10 * time.Second

// unansweredPings is how many pings in a row a graphql-transport-ws client
// may leave without a word before it is taken for dead and disconnected.
const unansweredPings = 2

// SlowStream is the cancellation cause that ends a stream for falling behind
// (set by whoever cancels the request's context); its WebSocket closes with
// CloseTryAgainLater instead of a normal closure.
type SlowStream interface {
	error
	SlowStream()
}

// SessionEnded is the cancellation cause of the context InitWebSocket
// returns when the connection's session ends (expired or revoked): its
// WebSocket closes with 4401 and the error's message as the reason.
type SessionEnded interface {
	error
	SessionEnded()
}

// wsTransport serves GraphQL over WebSocket.
type wsTransport struct {
	accept coderws.AcceptOptions
	// init checks connection_init; nil accepts every connection as it is.
	init         transport.WebsocketInitFunc
	log          *slog.Logger
	readLimit    int64
	initTimeout  time.Duration
	writeTimeout time.Duration
	// keepAlive is how often a ping (graphql-transport-ws) or "ka" (graphql-ws)
	// is sent once the connection is acknowledged; 0 sends none.
	keepAlive time.Duration
	// perAddress caps the sockets one client address holds open.
	perAddress *addrCount
}

var _ graphql.Transport = (*wsTransport)(nil)

func (t *wsTransport) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") != ""
}

func (t *wsTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if t.perAddress != nil {
		release, ok := t.perAddress.take(r)
		if !ok {
			w.Header().Set("Retry-After", "10")
			http.Error(w, "too many WebSockets from this address", http.StatusTooManyRequests)
			return
		}
		defer release()
	}
	hj := &hijackRecorder{ResponseWriter: w}
	var ws *coderws.Conn
	var err error
	// net/http writes the 101 response with a frame of some 3 KiB, which
	// would double the stack this goroutine keeps for the connection's life.
	aside(func() { ws, err = coderws.Accept(hj, r, &t.accept) })
	if err != nil {
		// Accept has answered (403 for a foreign origin, 426, …).
		t.log.DebugContext(r.Context(), "websocket upgrade refused", "error", err)
		return
	}
	ws.SetReadLimit(t.readLimit)
	c := &wsConn{
		t:       t,
		ws:      ws,
		nc:      hj.conn,
		legacy:  !strings.EqualFold(ws.Subprotocol(), subprotocolTransportWS),
		exec:    exec,
		ctx:     r.Context(),
		headers: r.Header,
	}
	c.serve(r.Context())
}

// hijackRecorder keeps the connection coder/websocket hijacks, so that each
// send sets its deadline on it: no timer or context per message.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = conn
	return conn, rw, err
}

// wsConn is one WebSocket connection.
type wsConn struct {
	t       *wsTransport
	ws      *coderws.Conn
	nc      net.Conn // the hijacked connection under ws, for write deadlines
	legacy  bool     // graphql-ws rather than graphql-transport-ws
	exec    graphql.GraphExecutor
	headers http.Header

	// ctx is the upgrade request's context until connection_init, then the
	// one the init check returned; operations run in children of it.
	ctx context.Context

	wmu sync.Mutex // one send at a time

	mu sync.Mutex
	// timer waits for connection_init, then paces the keep-alives.
	timer  *time.Timer
	acked  bool
	ending bool // the connection is closing: no new operations, no complete
	// ops are the running operations, by client id; opGone is signalled
	// when one is gone (made when first waited on).
	ops    []wsOp
	opGone *sync.Cond
	// heard: a message arrived since the last ping; unanswered counts the
	// pings in a row that were not followed by one.
	heard      bool
	unanswered int8
	running    sync.WaitGroup
}

// wsOp is a running operation.
type wsOp struct {
	id     string
	cancel context.CancelFunc
	// ending: stopped by the client, or being completed; its id is taken
	// until it is gone.
	ending bool
}

// wsMessage is a message of either protocol.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// serve reads the connection until it closes, then ends its operations and
// waits for them: the request lasts as long as the connection.
func (c *wsConn) serve(ctx context.Context) {
	c.mu.Lock()
	c.timer = time.AfterFunc(c.t.initTimeout, c.tick)
	c.mu.Unlock()
	// The request's context ends when the server shuts down or the stream is
	// ended (a slow subscriber): close the socket saying which.
	stop := context.AfterFunc(ctx, func() { c.closeCancelled(ctx) })
	defer stop()
	defer c.end()
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			if s := coderws.CloseStatus(err); s != closeNormal && s != coderws.StatusNoStatusRcvd && s != coderws.StatusGoingAway {
				c.t.log.DebugContext(ctx, "websocket connection error", "error", err)
			}
			return
		}
		start := graphql.Now()
		if !c.handle(data, start) {
			return
		}
	}
}

// end cancels every operation, closes the socket (if nothing closed it yet)
// and waits for the operations to finish.
func (c *wsConn) end() {
	c.stopAll()
	_ = c.ws.CloseNow()
	c.running.Wait()
}

// handle acts on one client message; false ends the connection.
func (c *wsConn) handle(data []byte, start time.Time) bool {
	var m wsMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return c.refuse(closeBadRequest, "Invalid message received: not a JSON object with a type")
	}
	c.mu.Lock()
	c.heard = true
	acked := c.acked
	c.mu.Unlock()

	switch m.Type {
	case "connection_init":
		if acked {
			return c.refuse(closeTooManyInits, "Too many initialisation requests")
		}
		return c.initialise(m.Payload)
	case "subscribe", "start":
		if (m.Type == "subscribe") == c.legacy {
			break
		}
		if !acked {
			return c.refuse(closeUnauthorized, "Unauthorized")
		}
		if m.ID == "" {
			return c.refuse(closeBadRequest, "Invalid message received: "+m.Type+" needs an id")
		}
		return c.startOp(m.ID, m.Payload, start)
	case "complete", "stop":
		if (m.Type == "complete") == c.legacy {
			break
		}
		c.stopOp(m.ID)
		return true
	case "ping", "pong":
		if c.legacy {
			break
		}
		if m.Type == "ping" {
			return c.send(appendEnvelope(nil, "pong", "", m.Payload)) == nil
		}
		return true
	case "connection_terminate":
		if !c.legacy {
			break
		}
		c.close(closeNormal, "terminated")
		return false
	}
	return c.refuse(closeBadRequest, "Invalid message received: unknown type "+quoteShort(m.Type))
}

// initialise runs the connection_init check and acknowledges the connection,
// or closes it: 4403 with the check's message, 4400 for a payload that is
// not an object.
func (c *wsConn) initialise(raw json.RawMessage) bool {
	ctx, ack, err := c.check(raw)
	switch {
	case errors.Is(err, errInitPayload):
		return c.refuse(closeBadRequest, "Invalid message received: "+err.Error())
	case err != nil:
		return c.refuse(closeForbidden, err.Error())
	}
	context.AfterFunc(ctx, func() {
		if ended, ok := errors.AsType[SessionEnded](context.Cause(ctx)); ok {
			c.refuse(closeUnauthorized, ended.Error())
		}
	})
	c.mu.Lock()
	c.ctx, c.acked = ctx, true
	if c.t.keepAlive > 0 {
		c.timer.Reset(c.t.keepAlive)
	} else {
		c.timer.Stop()
	}
	c.mu.Unlock()
	if c.send(appendEnvelope(nil, "connection_ack", "", ack)) != nil {
		return false
	}
	if c.legacy && c.t.keepAlive > 0 {
		return c.send(appendEnvelope(nil, "ka", "", nil)) == nil
	}
	return true
}

var errInitPayload = errors.New("the connection_init payload must be an object")

// check decodes connection_init's payload and runs the init check, on a
// goroutine of its own: the connection's goroutine lives as long as the
// socket and keeps the largest stack it ever needed, and decoding and
// checking a token may need a deep one. It returns the connection's context
// and the acknowledgement's payload, if any. A panic in the check is a
// refusal with an internal error, logged.
func (c *wsConn) check(raw json.RawMessage) (ctx context.Context, ack json.RawMessage, err error) {
	aside(func() {
		defer func() {
			if p := recover(); p != nil {
				c.t.log.ErrorContext(c.ctx, "panic in websocket connection_init", "panic", p, "stack", string(debug.Stack()))
				ctx, ack, err = nil, nil, errors.New("internal error")
			}
		}()
		ctx, ack, err = c.runCheck(raw)
	})
	return ctx, ack, err
}

func (c *wsConn) runCheck(raw json.RawMessage) (context.Context, json.RawMessage, error) {
	var payload transport.InitPayload
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &payload); err != nil {
			return nil, nil, errInitPayload
		}
	}
	if c.t.init == nil {
		return c.ctx, nil, nil
	}
	ctx, ack, err := c.t.init(c.ctx, payload)
	if err != nil {
		return nil, nil, err
	}
	if ctx == nil {
		ctx = c.ctx
	}
	if ack == nil {
		return ctx, nil, nil
	}
	b, err := json.Marshal(*ack)
	if err != nil {
		c.t.log.ErrorContext(c.ctx, "websocket connection_ack payload not encodable", "error", err)
		return nil, nil, errors.New("internal error")
	}
	return ctx, b, nil
}

// startOp starts the operation id on a goroutine of its own. An id that is
// still running closes the connection with 4409; one that is ending (the
// client stopped it, or its complete is being sent) is waited for, so that
// a client may use an id again once it is done with it.
func (c *wsConn) startOp(id string, payload json.RawMessage, start time.Time) bool {
	c.mu.Lock()
	for {
		if c.ending {
			c.mu.Unlock()
			return false
		}
		i := c.opIndex(id)
		if i < 0 {
			break
		}
		if !c.ops[i].ending {
			c.mu.Unlock()
			return c.refuse(closeSubscriberExists, "Subscriber for "+quoteShort(id)+" already exists")
		}
		if c.opGone == nil {
			c.opGone = sync.NewCond(&c.mu)
		}
		c.opGone.Wait()
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.ops = append(c.ops, wsOp{id: id, cancel: cancel})
	c.running.Add(1)
	c.mu.Unlock()
	op := &wsRun{c: c, ctx: ctx, id: id, payload: payload, start: start}
	go op.begin()
	return true
}

// stopOp cancels the operation id, if it runs; it then completes.
func (c *wsConn) stopOp(id string) {
	c.mu.Lock()
	var cancel context.CancelFunc
	if i := c.opIndex(id); i >= 0 && !c.ops[i].ending {
		c.ops[i].ending = true
		cancel = c.ops[i].cancel
	}
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// opIndex is the index of the operation id in ops, or -1. Called with mu held.
func (c *wsConn) opIndex(id string) int {
	for i, op := range c.ops {
		if op.id == id {
			return i
		}
	}
	return -1
}

// wsRun is one operation. Its setup (decoding, validation, the resolver
// that starts a subscription, a database read often) runs on a goroutine that
// ends with it; the results are streamed from a goroutine of their own, whose
// stack, while a subscription waits for its next event, then holds little
// more than the executor's frames.
type wsRun struct {
	c       *wsConn
	ctx     context.Context // the operation's; once dispatched, the executor's
	id      string
	payload json.RawMessage
	start   time.Time

	responses graphql.ResponseHandler
	// broken: a send failed, and the connection is being cut off.
	broken bool
}

// begin dispatches the operation and sends its first result (a
// subscription's snapshot), then leaves the rest to stream: that goroutine
// starts waiting at once, and never needs more stack than a small start.
func (o *wsRun) begin() {
	streaming := false
	defer func() {
		if p := recover(); p != nil {
			o.fail(p)
		}
		if !streaming {
			o.end()
		}
	}()
	if o.dispatch() && o.next() {
		streaming = true
		go o.stream()
	}
}

// stream sends the operation's results until there are no more.
func (o *wsRun) stream() {
	defer o.finish()
	for o.next() {
	}
}

// next sends the operation's next result; false when there are no more or
// the send failed.
func (o *wsRun) next() bool {
	resp := o.responses(o.ctx)
	if resp == nil {
		return false
	}
	if o.c.sendResponse(o.id, resp) != nil {
		o.broken = true
		return false
	}
	return true
}

func (o *wsRun) finish() {
	if p := recover(); p != nil {
		o.fail(p)
	}
	o.end()
}

// end completes the operation (unless the connection is ending or broken)
// and forgets it.
func (o *wsRun) end() {
	c := o.c
	c.mu.Lock()
	i := c.opIndex(o.id)
	if i >= 0 {
		c.ops[i].ending = true
	}
	complete := !c.ending && !o.broken
	c.mu.Unlock()
	if complete {
		_ = c.send(appendEnvelope(nil, "complete", o.id, nil))
	}
	c.mu.Lock()
	if i = c.opIndex(o.id); i >= 0 {
		c.ops[i].cancel()
		last := len(c.ops) - 1
		c.ops[i] = c.ops[last]
		c.ops[last] = wsOp{}
		c.ops = c.ops[:last]
	}
	if len(c.ops) == 0 {
		c.ops = nil // let go of the backing array
	}
	if c.opGone != nil {
		c.opGone.Broadcast()
	}
	c.mu.Unlock()
	c.running.Done()
}

// dispatch reads, validates and starts the operation; false means it was
// refused, and its errors were sent.
func (o *wsRun) dispatch() bool {
	c := o.c
	ctx := graphql.StartOperationTrace(o.ctx)
	params := &graphql.RawParams{Headers: c.headers}
	err := decodeJSON(o.payload, params)
	o.payload = nil
	if err != nil {
		metrics.CountError(domain.BadUserInput)
		logging.RequestFrom(ctx).AddErrorCode(domain.BadUserInput)
		c.sendErrors(o.id, gqlerror.List{badInput("bad %s payload: %s", c.subscribeType(), err)})
		return false
	}
	params.ReadTime = graphql.TraceTiming{Start: o.start, End: graphql.Now()}
	rc, errs := c.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			c.sendErrors(o.id, resp.Errors)
		} else {
			_ = c.sendResponse(o.id, resp)
		}
		return false
	}
	o.ctx = graphql.WithOperationContext(ctx, rc)
	o.responses, o.ctx = c.exec.DispatchOperation(o.ctx, rc)
	return true
}

// fail answers a panic of the operation with an error message, as gqlgen's
// executor does one in a resolver.
func (o *wsRun) fail(p any) {
	ctx := o.ctx
	var gqlErr *gqlerror.Error
	if graphql.HasOperationContext(ctx) {
		if rc := graphql.GetOperationContext(ctx); rc.RecoverFunc != nil {
			gqlErr, _ = rc.Recover(ctx, p).(*gqlerror.Error)
		}
	}
	if gqlErr == nil {
		o.c.t.log.ErrorContext(ctx, "panic serving websocket", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		gqlErr = &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": domain.Internal}}
	}
	o.c.sendErrors(o.id, gqlerror.List{gqlErr})
}

func (c *wsConn) subscribeType() string {
	if c.legacy {
		return "start"
	}
	return "subscribe"
}

// sendResponse sends one result of the operation id.
func (c *wsConn) sendResponse(id string, resp *graphql.Response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		c.t.log.ErrorContext(c.ctx, "websocket response not encodable", "error", err)
		b = []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`)
	}
	typ := "next"
	if c.legacy {
		typ = "data"
	}
	return c.send(appendEnvelope(nil, typ, id, b))
}

// sendErrors sends an "error" message: the operation id was refused.
func (c *wsConn) sendErrors(id string, errs gqlerror.List) {
	b, err := json.Marshal(errs)
	if err != nil {
		b = []byte(`[{"message":"internal error","extensions":{"code":"INTERNAL"}}]`)
	}
	_ = c.send(appendEnvelope(nil, "error", id, b))
}

// send writes one message within the write timeout; a client that does not
// take it in time is cut off.
func (c *wsConn) send(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.t.writeTimeout))
	err := c.ws.Write(context.Background(), coderws.MessageText, msg)
	// The close handshake and pongs are written without deadlines of their
	// own: leave none behind for them.
	_ = c.nc.SetWriteDeadline(time.Time{})
	if err != nil {
		_ = c.ws.CloseNow()
	}
	return err
}

// tick fires connection_init's timeout, then every keep-alive interval.
func (c *wsConn) tick() {
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		return
	}
	if !c.acked {
		c.mu.Unlock()
		c.close(closeInitTimeout, "Connection initialisation timeout")
		return
	}
	if !c.legacy {
		if c.heard {
			c.heard, c.unanswered = false, 0
		} else if c.unanswered++; c.unanswered >= unansweredPings {
			c.mu.Unlock()
			_ = c.ws.CloseNow() // the read ends, and with it the connection
			return
		}
	}
	c.mu.Unlock()
	msg := `{"type":"ping"}`
	if c.legacy {
		msg = `{"type":"ka"}`
	}
	if c.send([]byte(msg)) != nil {
		return
	}
	c.mu.Lock()
	if !c.ending {
		c.timer.Reset(c.t.keepAlive)
	}
	c.mu.Unlock()
}

// closeCancelled closes the socket once the request's context has ended:
// with CloseTryAgainLater when its stream fell behind, normally otherwise.
func (c *wsConn) closeCancelled(ctx context.Context) {
	if _, slow := errors.AsType[SlowStream](context.Cause(ctx)); slow {
		c.close(CloseTryAgainLater, "too slow: reconnect")
		return
	}
	c.close(closeNormal, "terminated")
}

// refuse closes the connection for a message it cannot take; a legacy
// client is told why in a connection_error first, as it knows no close
// codes. It returns false, for handle.
func (c *wsConn) refuse(code int, reason string) bool {
	if c.legacy {
		b, _ := json.Marshal(gqlerror.Error{Message: reason})
		_ = c.send(appendEnvelope(nil, "connection_error", "", b))
	}
	c.close(code, reason)
	return false
}

// close ends the operations and closes the socket with code and reason,
// waiting (boundedly) for the client to answer the close.
func (c *wsConn) close(code int, reason string) {
	c.stopAll()
	_ = c.ws.Close(coderws.StatusCode(code), shortReason(reason))
}

// stopAll marks the connection as ending, stops its timer and cancels its
// operations.
func (c *wsConn) stopAll() {
	c.mu.Lock()
	c.ending = true
	c.timer.Stop()
	ops := c.ops
	c.ops = nil
	if c.opGone != nil {
		c.opGone.Broadcast()
	}
	c.mu.Unlock()
	for _, op := range ops {
		op.cancel()
	}
}

// appendEnvelope appends the message {"id":id,"type":typ,"payload":payload}
// to b; id and payload are left out when empty.
func appendEnvelope(b []byte, typ, id string, payload json.RawMessage) []byte {
	if b == nil {
		b = make([]byte, 0, len(payload)+len(id)+len(typ)+40)
	}
	b = append(b, '{')
	if id != "" {
		b = append(b, `"id":`...)
		b = appendJSONString(b, id)
		b = append(b, ',')
	}
	b = append(b, `"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	if len(payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, payload...)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// maxCloseReason is the most a close frame's reason may hold, in bytes.
const maxCloseReason = 123

// shortReason cuts reason to what a close frame can carry.
func shortReason(reason string) string {
	short, _ := cutAtRune(reason, maxCloseReason)
	return short
}

// quoteShort quotes a client-chosen string for a close reason, cut short.
func quoteShort(s string) string {
	if short, cut := cutAtRune(s, 40); cut {
		s = short + "…"
	}
	return string(appendJSONString(nil, s))
}

// cutAtRune cuts s to at most max bytes at a rune boundary; cut says whether
// anything was left out.
func cutAtRune(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max], true
}

// aside runs f on a goroutine of its own and waits for it, passing a panic
// on. A connection's goroutine lives as long as its socket and keeps the
// largest stack it ever needed: deep one-off work runs aside, so that every
// idle connection keeps a small one.
func aside(f func()) {
	var p any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { p = recover() }()
		f()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}
