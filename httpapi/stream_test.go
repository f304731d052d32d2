package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"

	"livedrops/domain"
)

// wsMsg is a message of either WebSocket protocol.
type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialWS(t *testing.T, e *env, subprotocol string, header http.Header) (*wsClient, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{subprotocol}, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/query", header)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { conn.Close() })
	return &wsClient{t: t, conn: conn}, resp, nil
}

func (c *wsClient) send(m wsMsg) {
	c.t.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		c.t.Fatalf("websocket write: %v", err)
	}
}

// read returns the next message that is not a keep-alive, answering pings.
func (c *wsClient) read() wsMsg {
	c.t.Helper()
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m wsMsg
		if err := c.conn.ReadJSON(&m); err != nil {
			c.t.Fatalf("websocket read: %v", err)
		}
		switch m.Type {
		case "ka", "pong":
			continue
		case "ping":
			c.send(wsMsg{Type: "pong"})
			continue
		}
		return m
	}
}

func (c *wsClient) expect(typ, id string) wsMsg {
	c.t.Helper()
	m := c.read()
	if m.Type != typ || m.ID != id {
		c.t.Fatalf("got %s (id %q) %s, want %s (id %q)", m.Type, m.ID, m.Payload, typ, id)
	}
	return m
}

func payload(query string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"query": query})
	return b
}

// initWithToken authenticates a WebSocket from its connection_init payload.
func initWithToken(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	switch p.Authorization() {
	case "":
		return ctx, nil, nil
	case "Bearer alice":
		return domain.WithViewer(ctx, &domain.Viewer{UserID: 1, Handle: "alice"}), nil, nil
	case "Bearer boom":
		return nil, nil, errors.New("key store: dial tcp 10.0.0.9:443: connection refused")
	}
	return ctx, nil, domain.Errorf(domain.Unauthenticated, "bad token")
}

// settleGoroutines waits for the goroutine count to come back to base.
func settleGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWebSocketGraphQLTransportWS(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.InitWebSocket = initWithToken })
	base := runtime.NumGoroutine()

	c, resp, err := dialWS(t, e, "graphql-transport-ws", http.Header{RequestIDHeader: {"ws-1"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "graphql-transport-ws" {
		t.Fatalf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	c.send(wsMsg{Type: "connection_init", Payload: json.RawMessage(`{"Authorization":"Bearer alice"}`)})
	c.expect("connection_ack", "")

	c.send(wsMsg{ID: "1", Type: "subscribe", Payload: payload(`subscription { ticks(count: 3) }`)})
	for i := 1; i <= 3; i++ {
		m := c.expect("next", "1")
		if want := `{"data":{"ticks":` + itoa(i) + `}}`; string(m.Payload) != want {
			t.Fatalf("next %d: %s, want %s", i, m.Payload, want)
		}
	}
	c.expect("complete", "1")

	// The connection's viewer and request id reach resolvers.
	c.send(wsMsg{ID: "2", Type: "subscribe", Payload: payload(`{ viewer requestId }`)})
	if m := c.expect("next", "2"); string(m.Payload) != `{"data":{"viewer":"alice","requestId":"ws-1"}}` {
		t.Fatalf("query over websocket: %s", m.Payload)
	}
	c.expect("complete", "2")

	// Refused operations are "error" messages with their codes.
	c.send(wsMsg{ID: "3", Type: "subscribe", Payload: payload(`subscription { nope }`)})
	m := c.expect("error", "3")
	var errs []gqlErr
	if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) == 0 || errs[0].Extensions["code"] != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("validation error: %s", m.Payload)
	}
	c.expect("complete", "3") // gqlgen completes after an error; clients ignore it
	c.send(wsMsg{ID: "4", Type: "subscribe", Payload: payload(nested(20))})
	m = c.expect("error", "4")
	if err := json.Unmarshal(m.Payload, &errs); err != nil || errs[0].Extensions["code"] != CodeQueryTooDeep {
		t.Fatalf("depth error: %s", m.Payload)
	}
	c.expect("complete", "4")

	// A resolver error in a subscription keeps its code.
	c.send(wsMsg{ID: "5", Type: "subscribe", Payload: payload(`subscription { ticks(count: -1) }`)})
	m = c.read()
	if m.ID != "5" || !strings.Contains(string(m.Payload), `"code":"BAD_USER_INPUT"`) {
		t.Fatalf("resolver error: %s %s", m.Type, m.Payload)
	}
	c.expect("complete", "5")

	// Mutations run over the socket too.
	c.send(wsMsg{ID: "6", Type: "subscribe", Payload: payload(`mutation { bump }`)})
	if m := c.expect("next", "6"); !strings.HasPrefix(string(m.Payload), `{"data":{"bump":`) {
		t.Fatalf("mutation over websocket: %s", m.Payload)
	}
	c.expect("complete", "6")

	// A panic is INTERNAL, without its detail, and the connection lives on.
	c.send(wsMsg{ID: "7", Type: "subscribe", Payload: payload(`{ fail(kind: PANIC) }`)})
	m = c.expect("next", "7")
	var r gqlResponse
	if err := json.Unmarshal(m.Payload, &r); err != nil || len(r.Errors) != 1 ||
		r.Errors[0].Extensions["code"] != "INTERNAL" || r.Errors[0].Message != "internal error" {
		t.Fatalf("panic over websocket: %s", m.Payload)
	}
	c.expect("complete", "7")

	// A payload that is no GraphQL request is refused with a code.
	c.send(wsMsg{ID: "8", Type: "subscribe", Payload: json.RawMessage(`[1]`)})
	m = c.expect("error", "8")
	if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) != 1 || errs[0].Extensions["code"] != "BAD_USER_INPUT" {
		t.Fatalf("bad payload: %s", m.Payload)
	}
	c.expect("complete", "8")

	// A ping is answered with a pong carrying its payload.
	c.send(wsMsg{Type: "ping", Payload: json.RawMessage(`{"n":1}`)})
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.conn.ReadJSON(&m); err != nil || m.Type != "pong" || string(m.Payload) != `{"n":1}` {
		t.Fatalf("pong: %v %+v", err, m)
	}

	c.conn.Close()
	settleGoroutines(t, base)
}

func TestWebSocketInitRefused(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.InitWebSocket = initWithToken })
	for token, reason := range map[string]string{"Bearer mallory": "bad token", "Bearer boom": "internal error"} {
		for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
			c, _, err := dialWS(t, e, proto, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.send(wsMsg{Type: "connection_init", Payload: json.RawMessage(`{"Authorization":"` + token + `"}`)})
			var got []string
			for {
				_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				var m wsMsg
				err = c.conn.ReadJSON(&m)
				if err != nil {
					break
				}
				got = append(got, m.Type+" "+string(m.Payload))
			}
			closeErr, ok := err.(*websocket.CloseError)
			if !ok || closeErr.Code != 4403 || closeErr.Text != reason {
				t.Errorf("%s over %s: want close 4403 %q, got %v after %q", token, proto, reason, err, got)
			}
			if strings.Contains(strings.Join(got, " "), "10.0.0.9") {
				t.Errorf("%s over %s: detail leaked: %q", token, proto, got)
			}
		}
	}
	if lines := e.logs.lines(t, "websocket connection_init failed"); len(lines) != 2 {
		t.Errorf("want the two internal failures logged, got %v", lines)
	}
}

func TestWebSocketLegacyGraphQLWS(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.InitWebSocket = initWithToken })
	c, resp, err := dialWS(t, e, "graphql-ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "graphql-ws" {
		t.Fatalf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	c.send(wsMsg{Type: "connection_init", Payload: json.RawMessage(`{}`)})
	c.expect("connection_ack", "")
	c.send(wsMsg{ID: "a", Type: "start", Payload: payload(`subscription { ticks(count: 2) }`)})
	for i := 1; i <= 2; i++ {
		if m := c.expect("data", "a"); string(m.Payload) != `{"data":{"ticks":`+itoa(i)+`}}` {
			t.Fatalf("data %d: %s", i, m.Payload)
		}
	}
	c.expect("complete", "a")

	c.send(wsMsg{ID: "b", Type: "start", Payload: payload(`subscription { hold }`)})
	c.expect("data", "b")
	c.send(wsMsg{ID: "b", Type: "stop"})
	c.expect("complete", "b")

	// connection_terminate ends the connection normally.
	c.send(wsMsg{Type: "connection_terminate"})
	if code, _, msgs := c.closedWith(); code != websocket.CloseNormalClosure {
		t.Fatalf("closed with %d after %v, want a normal closure", code, msgs)
	}
}

func TestWebSocketOrigins(t *testing.T) {
	prod := newEnv(t, func(o *Options) {
		o.Prod = true
		o.AllowedOrigins = []string{"app.example.com"}
	})
	for origin, ok := range map[string]bool{
		"":                        true,
		prod.srv.URL:              true, // the server's own origin
		"https://app.example.com": true,
		"https://evil.example":    false,
	} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		_, resp, err := dialWS(t, prod, "graphql-transport-ws", h)
		if ok && err != nil {
			t.Errorf("prod, origin %q: %v", origin, err)
		}
		if !ok && (err == nil || resp == nil || resp.StatusCode != http.StatusForbidden) {
			t.Errorf("prod, origin %q: want 403, got %v", origin, err)
		}
	}

	dev := newEnv(t, nil)
	if _, _, err := dialWS(t, dev, "graphql-transport-ws", http.Header{"Origin": {"http://localhost:5173"}}); err != nil {
		t.Errorf("dev, another origin: %v", err)
	}
}

func TestSSE(t *testing.T) {
	e := newEnv(t, nil)
	req, _ := http.NewRequest("POST", e.srv.URL+"/query", strings.NewReader(`{"query":"subscription { ticks(count: 3) }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "event: ") || strings.HasPrefix(line, "data: ") {
			events = append(events, line)
		}
	}
	want := []string{
		"event: next", `data: {"data":{"ticks":1}}`,
		"event: next", `data: {"data":{"ticks":2}}`,
		"event: next", `data: {"data":{"ticks":3}}`,
		"event: complete",
	}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s", strings.Join(events, "\n"))
	}
}

func TestWebSocketKeepAlive(t *testing.T) {
	saved := keepAlive
	keepAlive = 50 * time.Millisecond
	t.Cleanup(func() { keepAlive = saved })
	e := newEnv(t, nil)

	// Legacy graphql-ws: the server sends "ka" on its own.
	legacy, _, err := dialWS(t, e, "graphql-ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	legacy.send(wsMsg{Type: "connection_init"})
	legacy.expect("connection_ack", "")
	kas := 0
	for kas < 3 {
		_ = legacy.conn.SetReadDeadline(time.Now().Add(time.Second))
		var m wsMsg
		if err := legacy.conn.ReadJSON(&m); err != nil {
			t.Fatalf("after %d keep-alives: %v", kas, err)
		}
		if m.Type == "ka" {
			kas++
		}
	}

	// graphql-transport-ws: the server pings, and drops a client that never
	// answers.
	c, _, err := dialWS(t, e, "graphql-transport-ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(wsMsg{Type: "connection_init"})
	c.expect("connection_ack", "")
	pings := 0
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		var m wsMsg
		if err := c.conn.ReadJSON(&m); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("a client that never answers pings was kept")
			}
			break
		}
		if m.Type == "ping" {
			pings++
		}
	}
	if pings == 0 {
		t.Fatal("the server never pinged")
	}

	// One that answers stays.
	alive, _, err := dialWS(t, e, "graphql-transport-ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	alive.send(wsMsg{Type: "connection_init"})
	alive.expect("connection_ack", "")
	alive.send(wsMsg{ID: "h", Type: "subscribe", Payload: payload(`subscription { hold }`)})
	alive.expect("next", "h")
	pings = 0
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
		_ = alive.conn.SetReadDeadline(time.Now().Add(time.Second))
		var m wsMsg
		if err := alive.conn.ReadJSON(&m); err != nil {
			t.Fatalf("a client answering pings was dropped: %v", err)
		}
		if m.Type == "ping" {
			pings++
			alive.send(wsMsg{Type: "pong"})
		}
	}
	if pings < 3 {
		t.Fatalf("%d pings in 500ms", pings)
	}
	alive.send(wsMsg{ID: "h", Type: "complete"})
	alive.expect("complete", "h")
}
