package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"livedrops/httpapi/internal/testschema"
	"livedrops/logging"
)

func TestServeEndsStreamsAndFinishesRequests(t *testing.T) {
	base := runtime.NumGoroutine()
	schema, _ := testschema.New()
	logs := &syncBuffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: New(Options{Schema: schema, Log: discardLog}), ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, srv, ln, logging.New("debug", logs), 5*time.Second) }()

	// A live subscription…
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(url, "http")+"/query", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	c := &wsClient{t: t, conn: conn}
	c.send(wsMsg{Type: "connection_init"})
	c.expect("connection_ack", "")
	c.send(wsMsg{ID: "1", Type: "subscribe", Payload: payload(`subscription { hold }`)})
	c.expect("next", "1")

	// …and a request in flight when shutdown begins.
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Post(url+"/query", "application/json", strings.NewReader(`{"query":"{ slow(ms: 300) }"}`))
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	cancel()

	// The subscription ends at once, closing its socket.
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		var m wsMsg
		if err := conn.ReadJSON(&m); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the subscription outlived the shutdown")
			}
			break
		}
	}
	if got := <-slow; got != `{"data":{"slow":300}}` {
		t.Fatalf("the request in flight got %s", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("the server still answers")
	}
	if len(logs.lines(t, "http server stopped")) != 1 {
		t.Fatalf("logs: %s", logs)
	}
	http.DefaultClient.CloseIdleConnections()
	settleGoroutines(t, base)
}

func TestServeReportsAListenerFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = Serve(t.Context(), &http.Server{}, ln, discardLog, time.Second)
	if err == nil || !strings.Contains(err.Error(), "serve http on") {
		t.Fatalf("err = %v", err)
	}
}

func TestServeGraceRunsOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // a handler that ignores everything
	})}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, srv, ln, discardLog, 200*time.Millisecond) }()
	go func() {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	err = <-served
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}
