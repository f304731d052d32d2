package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"livedrops/domain"
	"livedrops/graph"
	"livedrops/httpapi"
	"livedrops/live"
	"livedrops/resolvers"
)

// The load process's subscribers against the server's own GraphQL handler
// and live hub, in-process: the protocol run, the first state, conflated
// stock updates, the status change, and polite closing.
func TestSubscribersAgainstTheServerTransport(t *testing.T) {
	const total, subscribers = 20, 40
	const dropID = 7
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := live.NewHub(log, live.Options{
		StockInterval: 5 * time.Millisecond,
		DropSnapshot: func(ctx context.Context, id int64) (live.DropUpdate, error) {
			if id != dropID {
				return live.DropUpdate{}, domain.Errorf(domain.NotFound, "no drop #%d", id)
			}
			return live.DropUpdate{Status: domain.DropLive, Stock: domain.Stock{Total: total, Available: total}}, nil
		},
	})
	defer hub.Close()
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &resolvers.Resolver{Hub: hub}, Complexity: resolvers.Complexity()})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Schema: schema, Log: log}))
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/query"
	gid := domain.GlobalID(domain.TypeDrop, dropID)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subs := make([]*subscriber, subscribers)
	for i := range subs {
		s, err := subscribe(ctx, &http.Client{}, wsURL, gid, "")
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		subs[i] = s
	}
	defer closeAll(subs, 8)
	for i, s := range subs {
		st, ok, err := s.last()
		if !ok || err != nil || st.Available != total || st.Status != "LIVE" {
			t.Fatalf("subscriber %d first state %+v (received %v, err %v), want %d available, LIVE", i, st, ok, err, total)
		}
	}

	// Sell every unit, one event each, as the outbox relay would publish them.
	for available := total - 1; available >= 0; available-- {
		p := domain.StockPayload{DropID: dropID, Total: total, Available: available, Reserved: total - available}
		raw, _ := json.Marshal(p)
		ev := domain.Event{ID: fmt.Sprintf("stock-%d", available), Type: domain.EventStockChanged, Key: "drop:7", Payload: raw, OccurredAt: time.Now()}
		if err := hub.Handle(ctx, ev); err != nil {
			t.Fatalf("hub: %v", err)
		}
		if available == 0 {
			ev.ID, ev.Type = "sold-out", domain.EventSoldOut
			if err := hub.Handle(ctx, ev); err != nil {
				t.Fatalf("hub: %v", err)
			}
		}
	}
	final := dropState{Available: 0, Reserved: total, Total: total, Status: "SOLD_OUT"}
	for {
		lasts := make([]*dropState, len(subs))
		for i, s := range subs {
			if st, ok, err := s.last(); ok && err == nil {
				lasts[i] = &st
			}
		}
		if countStale(lasts, final) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d subscribers never showed the final state", countStale(lasts, final))
		}
		time.Sleep(5 * time.Millisecond)
	}

	states := make([][]dropState, len(subs))
	for i, s := range subs {
		states[i] = s.received()
	}
	commits := map[int32]commit{}
	for n := range int32(total) {
		commits[n] = commit{Written: time.Now().Add(-time.Minute)}
	}
	d := judgeDelivery(states, commits)
	if d.MovedBack != 0 || d.Unmatched != 0 || len(d.FromCommit) < subscribers {
		t.Errorf("delivery %+v: want every subscriber timed at least once, nothing moved back or unmatched", d)
	}
	closeAll(subs, 8)
	for i, s := range subs {
		if _, _, err := s.last(); err != nil {
			t.Errorf("subscriber %d ended with %v after a polite close", i, err)
		}
	}
}

// A refused subscription (an unknown drop) is an error of subscribe, not a
// subscriber that waits forever.
func TestSubscribeReportsARefusal(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := live.NewHub(log, live.Options{DropSnapshot: func(ctx context.Context, id int64) (live.DropUpdate, error) {
		return live.DropUpdate{}, domain.Errorf(domain.NotFound, "no drop #%d", id)
	}})
	defer hub.Close()
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &resolvers.Resolver{Hub: hub}, Complexity: resolvers.Complexity()})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Schema: schema, Log: log}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := subscribe(ctx, &http.Client{}, "ws"+strings.TrimPrefix(srv.URL, "http")+"/query", domain.GlobalID(domain.TypeDrop, 1), "")
	t.Logf("refusal: %v", err)
	if err == nil || !strings.Contains(err.Error(), "NOT_FOUND") && !strings.Contains(err.Error(), "no drop") {
		t.Fatalf("subscribe to an unknown drop: %v, want the refusal", err)
	}
}

// The parts of the protocol the server rarely shows in a short test: a
// ping is answered with a pong before anything else, and a stream the
// server completes is an early end.
func TestSubscriberAnswersPingsAndNoticesCompletion(t *testing.T) {
	pong := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{subprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		read := func() string {
			_, b, err := c.Read(ctx)
			if err != nil {
				return ""
			}
			var m wsMessage
			_ = json.Unmarshal(b, &m)
			return m.Type
		}
		write := func(s string) { _ = c.Write(ctx, websocket.MessageText, []byte(s)) }
		if read() != "connection_init" {
			return
		}
		write(`{"type":"connection_ack"}`)
		write(`{"type":"ping"}`)
		// The client may subscribe before it reads the ping.
		got := map[string]bool{read(): true, read(): true}
		pong <- got["pong"]
		if !got["subscribe"] {
			return
		}
		write(`{"id":"1","type":"next","payload":{"data":{"dropUpdated":{"status":"LIVE","stock":{"available":3,"reserved":1,"sold":0,"total":4}}}}}`)
		write(`{"id":"1","type":"complete"}`)
		read() // until the client goes
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := subscribe(ctx, &http.Client{}, "ws"+strings.TrimPrefix(srv.URL, "http"), "RHJvcDox", "")
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer s.Close()
	if !<-pong {
		t.Error("the ping was not answered with a pong")
	}
	<-s.done
	st, ok, err := s.last()
	if !ok || st.Available != 3 || st.Reserved != 1 || st.Total != 4 || st.Status != "LIVE" {
		t.Errorf("last state %+v (received %v), want the one sent", st, ok)
	}
	if err == nil || !strings.Contains(err.Error(), "completed") {
		t.Errorf("stream end = %v, want the server's completion", err)
	}
}
