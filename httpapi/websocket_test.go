package httpapi

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"

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
