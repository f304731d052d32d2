package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// A client that subscribes and then never reads fills its TCP window; the
// server's send gives up after the write timeout and closes the connection,
// instead of holding it (and its subscription) forever.
func TestWebSocketClientThatNeverReadsIsCutOff(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.WriteTimeout = 300 * time.Millisecond })
	base := runtime.NumGoroutine()
	c, _, err := dialWS(t, e, "graphql-transport-ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.send(wsMsg{Type: "connection_init"})
	c.expect("connection_ack", "")
	// Millions of ticks: far more than any socket buffer holds.
	c.send(wsMsg{ID: "1", Type: "subscribe", Payload: payload(`subscription { ticks(count: 50000000) }`)})
	// Never read again: the server must close on its own and let go of everything.
	settleGoroutines(t, base+2) // the client's own reader may linger until cleanup
}

type slowCause struct{}

func (slowCause) Error() string { return "fell behind" }
func (slowCause) SlowStream()   {}

// A stream ended because its subscriber fell behind closes with 1013, "try
// again later", so the client knows to reconnect; any other end is normal.
func TestWebSocketSlowStreamClosesWithTryAgainLater(t *testing.T) {
	for name, cause := range map[string]error{"slow": slowCause{}, "other": errors.New("shutdown")} {
		t.Run(name, func(t *testing.T) {
			ended := make(chan context.CancelCauseFunc, 1)
			e := newEnv(t, func(o *Options) {
				o.PerRequest = []func(http.Handler) http.Handler{func(next http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						ctx, cancel := context.WithCancelCause(r.Context())
						defer cancel(nil)
						ended <- cancel
						next.ServeHTTP(w, r.WithContext(ctx))
					})
				}}
			})
			c, _, err := dialWS(t, e, "graphql-transport-ws", nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.send(wsMsg{Type: "connection_init"})
			c.expect("connection_ack", "")
			c.send(wsMsg{ID: "1", Type: "subscribe", Payload: payload(`subscription { hold }`)})
			c.expect("next", "1")
			(<-ended)(cause)
			want := websocket.CloseNormalClosure
			if name == "slow" {
				want = CloseTryAgainLater
			}
			for {
				_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _, err := c.conn.ReadMessage()
				if err == nil {
					continue // the connection_error gqlgen may send first
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != want {
					t.Fatalf("closed with %v, want code %d", err, want)
				}
				return
			}
		})
	}
}

// closedWith reads until the server closes the connection, and returns the
// close code and reason and the messages that came before.
func (c *wsClient) closedWith() (code int, reason string, msgs []wsMsg) {
	c.t.Helper()
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m wsMsg
		err := c.conn.ReadJSON(&m)
		if err == nil {
			msgs = append(msgs, m)
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("want a close frame, got %v after %v", err, msgs)
		}
		return ce.Code, ce.Text, msgs
	}
}

// Each way of breaking the protocol closes the connection with its
// graphql-transport-ws code; a legacy graphql-ws client, whose protocol has
// no codes, is first told why in a connection_error.
func TestWebSocketCloseCodes(t *testing.T) {
	saved := wsInitTimeout
	wsInitTimeout = 200 * time.Millisecond
	t.Cleanup(func() { wsInitTimeout = saved })
	e := newEnv(t, func(o *Options) { o.InitWebSocket = initWithToken })
	base := runtime.NumGoroutine()

	for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
		legacy := proto == "graphql-ws"
		sub, other := "subscribe", "start"
		if legacy {
			sub, other = "start", "subscribe"
		}
		hold := payload(`subscription { hold }`)
		for _, tc := range []struct {
			name   string
			init   bool  // send connection_init and expect the ack first
			send   []any // then these: a wsMsg, or a string sent as it is
			code   int
			reason string
		}{
			{"not JSON", true, []any{"{nope"}, 4400, "Invalid message received: not a JSON object with a type"},
			{"not an object", true, []any{`["connection_init"]`}, 4400, "Invalid message received: not a JSON object with a type"},
			{"unknown type", true, []any{wsMsg{Type: "bogus"}}, 4400, `Invalid message received: unknown type "bogus"`},
			{"the other protocol's message", true, []any{wsMsg{ID: "1", Type: other, Payload: hold}}, 4400, "unknown type"},
			{"an operation without an id", true, []any{wsMsg{Type: sub, Payload: hold}}, 4400, "needs an id"},
			{"an init payload that is not an object", false, []any{`{"type":"connection_init","payload":[1]}`}, 4400, "payload must be an object"},
			{"an operation before init", false, []any{wsMsg{ID: "1", Type: sub, Payload: hold}}, 4401, "Unauthorized"},
			{"a second init", true, []any{wsMsg{Type: "connection_init"}}, 4429, "Too many initialisation requests"},
			{"a running id again", true, []any{wsMsg{ID: "x", Type: sub, Payload: hold}, wsMsg{ID: "x", Type: sub, Payload: hold}}, 4409, `Subscriber for "x" already exists`},
			{"no init in time", false, nil, 4408, "Connection initialisation timeout"},
		} {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				c, _, err := dialWS(t, e, proto, nil)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				if tc.init {
					c.send(wsMsg{Type: "connection_init"})
					c.expect("connection_ack", "")
				}
				for _, m := range tc.send {
					if raw, ok := m.(string); ok {
						if err := c.conn.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
							t.Fatal(err)
						}
						continue
					}
					c.send(m.(wsMsg))
				}
				code, reason, msgs := c.closedWith()
				if code != tc.code || !strings.Contains(reason, tc.reason) {
					t.Fatalf("closed with %d %q, want %d %q", code, reason, tc.code, tc.reason)
				}
				told := false
				for _, m := range msgs {
					var e gqlErr
					if m.Type == "connection_error" && json.Unmarshal(m.Payload, &e) == nil {
						told = strings.Contains(e.Message, tc.reason)
					}
				}
				if want := legacy && tc.code != 4408; told != want {
					t.Errorf("connection_error with the reason: %v, want %v (messages %v)", told, want, msgs)
				}
			})
		}
	}
	settleGoroutines(t, base)
}

// A connection holds one goroutine (the one serving its upgrade request,
// which reads) and each running subscription one more: keep-alives, the
// init timeout and the end of the request wait on timers and callbacks, not
// goroutines.
func TestWebSocketGoroutinesPerSubscriber(t *testing.T) {
	e := newEnv(t, nil)
	base := runtime.NumGoroutine()
	const n = 10
	for i := range n {
		proto := "graphql-transport-ws"
		if i%2 == 1 {
			proto = "graphql-ws"
		}
		c, _, err := dialWS(t, e, proto, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.send(wsMsg{Type: "connection_init"})
		c.expect("connection_ack", "")
		typ, next := "subscribe", "next"
		if proto == "graphql-ws" {
			typ, next = "start", "data"
		}
		c.send(wsMsg{ID: "1", Type: typ, Payload: payload(`subscription { hold }`)})
		c.expect(next, "1")
		t.Cleanup(func() { c.conn.Close() })
	}
	// Goroutines of earlier tests may still be ending: the count may only be
	// lower than base plus two per subscriber, never higher once settled.
	settleGoroutines(t, base+2*n)
}

// An id is the client's again once its operation is done or stopped, even
// when the client does not wait for the complete: only an id still running
// is a duplicate (4409, tested above).
func TestWebSocketReusesAnIdOnceDone(t *testing.T) {
	e := newEnv(t, nil)
	c, _, err := dialWS(t, e, "graphql-transport-ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.send(wsMsg{Type: "connection_init"})
	c.expect("connection_ack", "")
	for range 20 {
		c.send(wsMsg{ID: "r", Type: "subscribe", Payload: payload(`subscription { hold }`)})
		c.expect("next", "r")
		c.send(wsMsg{ID: "r", Type: "complete"})
		c.send(wsMsg{ID: "r", Type: "subscribe", Payload: payload(`subscription { ticks(count: 1) }`)})
		c.expect("complete", "r") // the stopped one's
		c.expect("next", "r")
		c.expect("complete", "r")
		c.send(wsMsg{ID: "r", Type: "subscribe", Payload: payload(`{ hello }`)})
		c.expect("next", "r")
		c.expect("complete", "r")
	}
}

// A message over MaxBodyBytes closes the connection with 1009 (message too
// big) before it is read whole.
func TestWebSocketReadLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	c, _, err := dialWS(t, e, "graphql-transport-ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.send(wsMsg{Type: "connection_init"})
	c.expect("connection_ack", "")
	c.send(wsMsg{ID: "1", Type: "subscribe", Payload: payload(`{ hello }`)})
	c.expect("next", "1")
	c.expect("complete", "1")
	c.send(wsMsg{ID: "2", Type: "subscribe", Payload: payload(`{ hello ` + strings.Repeat("# padding\n", 200) + `}`)})
	if code, _, msgs := c.closedWith(); code != websocket.CloseMessageTooBig {
		t.Fatalf("closed with %d after %v, want %d", code, msgs, websocket.CloseMessageTooBig)
	}
}

func TestCloseReasonsAreCutAtARuneBoundary(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes, two per rune
	if got := shortReason(long); len(got) != 122 || !utf8.ValidString(got) {
		t.Errorf("shortReason kept %d bytes (valid UTF-8: %v), want 122", len(got), utf8.ValidString(got))
	}
	if got := shortReason("bye"); got != "bye" {
		t.Errorf("shortReason(%q) = %q", "bye", got)
	}
	if got, want := quoteShort(strings.Repeat("x", 39)+"éz"), `"`+strings.Repeat("x", 39)+`…"`; got != want {
		t.Errorf("quoteShort = %s, want %s", got, want)
	}
	if got := quoteShort(`a"b`); got != `"a\"b"` {
		t.Errorf("quoteShort = %s", got)
	}
}
