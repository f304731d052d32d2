package main

// End-to-end tests of the live layer on the real services: subscriptions over
// graphql-transport-ws, the legacy graphql-ws and server-sent events, the
// notifier's fan-out to followers, notifications, and cache invalidation
// between two instances.
//
// The tests measuring time or resources (stampede latency, the slow reader,
// goroutines and heap, the fan-out) are not parallel, so they run alone.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"livedrops/config"
	"livedrops/domain"
	"livedrops/resolvers"
	"livedrops/store"
)

// The WebSocket subprotocols the server speaks.
const (
	protoTransportWS = "graphql-transport-ws"
	protoLegacyWS    = "graphql-ws"
)

// liveWithin bounds every wait for a message that must come.
const liveWithin = 10 * time.Second

// liveEvent is one message of a subscription, whatever the transport.
type liveEvent struct {
	// Kind is "next" (graphql-transport-ws next, graphql-ws data, SSE next),
	// "error", "complete", or "closed" when the transport ended first.
	Kind    string
	Payload json.RawMessage
	At      time.Time // when the client read it
}

// liveStream is one subscription seen from the client.
type liveStream struct {
	name   string
	events chan liveEvent
	stop   func()
}

// next waits for the subscription's next message.
func (s *liveStream) next(t testing.TB, within time.Duration) liveEvent {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case ev, ok := <-s.events:
		if !ok {
			return liveEvent{Kind: "closed", At: time.Now()}
		}
		return ev
	case <-timer.C:
		t.Fatalf("%s: no message within %s", s.name, within)
	}
	return liveEvent{}
}

// result waits for the next message, which must be a result or an error,
// decodes its data into out (nil: discard) and returns its errors.
func (s *liveStream) result(t testing.TB, out any) []gqlError {
	t.Helper()
	ev := s.next(t, liveWithin)
	switch ev.Kind {
	case "next":
		var p struct {
			Data   json.RawMessage `json:"data"`
			Errors []gqlError      `json:"errors"`
		}
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatalf("%s: decode %s: %v", s.name, ev.Payload, err)
		}
		if out != nil && len(p.Data) > 0 && string(p.Data) != "null" {
			if err := json.Unmarshal(p.Data, out); err != nil {
				t.Fatalf("%s: decode data %s: %v", s.name, p.Data, err)
			}
		}
		return p.Errors
	case "error":
		var errs []gqlError
		if err := json.Unmarshal(ev.Payload, &errs); err != nil {
			var one gqlError
			if err := json.Unmarshal(ev.Payload, &one); err != nil {
				t.Fatalf("%s: decode error %s: %v", s.name, ev.Payload, err)
			}
			errs = []gqlError{one}
		}
		return errs
	}
	t.Fatalf("%s: got %s %s, want a result", s.name, ev.Kind, ev.Payload)
	return nil
}

// mustResult is result for a message that must carry no error.
func (s *liveStream) mustResult(t testing.TB, out any) {
	t.Helper()
	if errs := s.result(t, out); len(errs) > 0 {
		t.Fatalf("%s: unexpected errors %s", s.name, describeErrors(errs))
	}
}

// refused checks the subscription was refused with one error of code, then ended.
func (s *liveStream) refused(t testing.TB, code string) {
	t.Helper()
	requireError(t, s.result(t, nil), code, "")
	s.ended(t)
}

// ended checks the subscription's next message says it is over.
func (s *liveStream) ended(t testing.TB) {
	t.Helper()
	if ev := s.next(t, liveWithin); ev.Kind != "complete" && ev.Kind != "closed" {
		t.Fatalf("%s: got %s %s, want the end of the stream", s.name, ev.Kind, ev.Payload)
	}
}

// quiet checks no message arrives within d.
func (s *liveStream) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case ev := <-s.events:
		t.Fatalf("%s: unexpected %s %s", s.name, ev.Kind, ev.Payload)
	default:
	}
	select {
	case ev := <-s.events:
		t.Fatalf("%s: unexpected %s %s", s.name, ev.Kind, ev.Payload)
	case <-time.After(d):
	}
}

// wsMessage is a message of either WebSocket subprotocol.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// liveConn is a client WebSocket: one reader goroutine routes each message
// to its subscription, and answers pings.
type liveConn struct {
	name  string
	proto string
	ws    *websocket.Conn
	wmu   sync.Mutex // writes
	mu    sync.Mutex // subs and seq
	subs  map[string]chan liveEvent
	seq   int
	done  chan struct{}
	once  sync.Once
}

// wsURL is the WebSocket address of /query.
func (a *testApp) wsURL() string { return "ws" + strings.TrimPrefix(a.URL, "http") + "/query" }

// wsHandshake dials /query with proto and completes connection_init with
// the token ("" for anonymous), as graphql-ws clients do.
func (a *testApp) wsHandshake(t testing.TB, proto, token string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: liveWithin}
	ws, resp, err := d.Dial(a.wsURL(), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", a.wsURL(), err)
	}
	resp.Body.Close()
	if ws.Subprotocol() != proto {
		ws.Close()
		t.Fatalf("negotiated subprotocol %q, want %q", ws.Subprotocol(), proto)
	}
	init := map[string]any{}
	if token != "" {
		init["Authorization"] = "Bearer " + token
	}
	if err := ws.WriteJSON(wsMessage{Type: "connection_init", Payload: liveJSON(t, init)}); err != nil {
		ws.Close()
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(liveWithin))
	for {
		var m wsMessage
		if err := ws.ReadJSON(&m); err != nil {
			ws.Close()
			t.Fatalf("waiting for connection_ack: %v", err)
		}
		if m.Type == "connection_ack" {
			break
		}
		if m.Type != "ka" && m.Type != "ping" {
			ws.Close()
			t.Fatalf("got %s %s before connection_ack", m.Type, m.Payload)
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws
}

// dialLive opens a WebSocket speaking proto, closed when the test ends.
func (a *testApp) dialLive(t testing.TB, proto, token string) *liveConn {
	t.Helper()
	c := &liveConn{name: proto, proto: proto, ws: a.wsHandshake(t, proto, token), subs: map[string]chan liveEvent{}, done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *liveConn) read() {
	defer func() {
		c.mu.Lock()
		for id, ch := range c.subs {
			close(ch)
			delete(c.subs, id)
		}
		c.mu.Unlock()
		close(c.done)
	}()
	for {
		var m wsMessage
		if err := c.ws.ReadJSON(&m); err != nil {
			return
		}
		at := time.Now()
		var kind string
		switch m.Type {
		case "ping":
			_ = c.send(wsMessage{Type: "pong"})
			continue
		case "next", "data":
			kind = "next"
		case "error", "complete":
			kind = m.Type
		default: // pong, ka, connection_error (the close follows)
			continue
		}
		c.mu.Lock()
		ch := c.subs[m.ID]
		if kind == "complete" {
			delete(c.subs, m.ID)
		}
		c.mu.Unlock()
		if ch == nil {
			continue
		}
		ch <- liveEvent{Kind: kind, Payload: m.Payload, At: at}
		if kind == "complete" {
			close(ch)
		}
	}
}

func (c *liveConn) send(m wsMessage) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(liveWithin))
	return c.ws.WriteJSON(m)
}

// subscribe starts a subscription on the connection; buffer is how many
// messages the client keeps for it unread.
func (c *liveConn) subscribe(t testing.TB, query string, vars map[string]any, buffer int) *liveStream {
	t.Helper()
	c.mu.Lock()
	c.seq++
	id := strconv.Itoa(c.seq)
	ch := make(chan liveEvent, buffer)
	c.subs[id] = ch
	c.mu.Unlock()
	start, stop := "subscribe", "complete"
	if c.proto == protoLegacyWS {
		start, stop = "start", "stop"
	}
	if err := c.send(wsMessage{ID: id, Type: start, Payload: liveJSON(t, gqlRequest{Query: query, Variables: vars})}); err != nil {
		t.Fatalf("%s: subscribe: %v", c.name, err)
	}
	return &liveStream{name: c.name + "#" + id, events: ch, stop: func() { _ = c.send(wsMessage{ID: id, Type: stop}) }}
}

// close closes the connection (with a close frame) and waits for its reader.
func (c *liveConn) close() {
	c.once.Do(func() {
		c.wmu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		c.ws.Close()
		<-c.done
	})
}

// sseSubscribe runs a subscription over server-sent events (graphql-sse's
// distinct connections mode): a POST whose response is the stream.
func (a *testApp) sseSubscribe(t testing.TB, token, query string, vars map[string]any) *liveStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+"/query", bytes.NewReader(liveJSON(t, gqlRequest{Query: query, Variables: vars})))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// A client of its own: a.HTTP's timeout would cut the stream.
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		cancel()
		t.Fatalf("SSE answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan liveEvent, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		var kind string
		var data []byte
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if kind != "" {
					events <- liveEvent{Kind: kind, Payload: json.RawMessage(data), At: time.Now()}
				}
				kind, data = "", nil
			case strings.HasPrefix(line, ":"): // a comment: keep-alive
			case strings.HasPrefix(line, "event:"):
				kind = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
			}
		}
	}()
	stop := func() {
		cancel()
		resp.Body.Close()
	}
	t.Cleanup(func() {
		stop()
		<-done
		client.CloseIdleConnections()
	})
	return &liveStream{name: "sse", events: events, stop: stop}
}

func liveJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// liveKey returns the database key of a global id.
func liveKey(t testing.TB, gid string) int64 {
	t.Helper()
	_, id, err := domain.ParseGlobalID(gid)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// scheduleLiveDrop schedules a drop of the product an hour ahead and returns its id.
func (a *testApp) scheduleLiveDrop(t testing.TB, token, productID string, stock int) string {
	t.Helper()
	var out struct{ ScheduleDrop struct{ ID string } }
	now := time.Now().UTC()
	a.mustGQL(t, token, `mutation($in: ScheduleDropInput!) { scheduleDrop(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"productId": productID, "startsAt": now.Add(time.Hour).Format(time.RFC3339), "endsAt": now.Add(2 * time.Hour).Format(time.RFC3339),
		"stock": stock, "perUserLimit": 1,
	}}, &out)
	return out.ScheduleDrop.ID
}

// dropMutation runs startDrop, endDrop or cancelDrop on a drop.
func (a *testApp) dropMutation(t testing.TB, token, mutation, dropID string) {
	t.Helper()
	a.mustGQL(t, token, `mutation($id: ID!) { `+mutation+`(id: $id) { id } }`, map[string]any{"id": dropID}, nil)
}

// startLiveDrop makes a creator with a product and a live drop of stock units.
func (a *testApp) startLiveDrop(t testing.TB, stock int) (creatorToken, productID, dropID string) {
	t.Helper()
	creatorToken, _ = a.makeCreator(t)
	productID = a.createProduct(t, creatorToken, "Sneaker")
	dropID = a.scheduleLiveDrop(t, creatorToken, productID, stock)
	a.dropMutation(t, creatorToken, "startDrop", dropID)
	return creatorToken, productID, dropID
}

const placeOrderMutation = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { id status } }`

// placeOne places an order of one unit as the token's user.
func (a *testApp) placeOne(token, dropID, key string) (*gqlResponse, error) {
	return a.exec(token, placeOrderMutation, map[string]any{"in": map[string]any{"dropId": dropID, "quantity": 1, "idempotencyKey": key}})
}

// stampede has buyers new users each order one unit of the drop at once,
// through HTTP, and returns how many orders were accepted and when the last
// accepted one was answered.
func (a *testApp) stampede(t testing.TB, dropID string, buyers int) (accepted int, lastAccepted time.Time) {
	t.Helper()
	tokens := make([]string, buyers)
	for i := range tokens {
		_, tokens[i] = a.mustNewUser(t, uniqueHandle("buyer"))
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		refused = map[string]int{}
		failure error
	)
	start := make(chan struct{})
	for i, token := range tokens {
		wg.Go(func() {
			<-start
			resp, err := a.placeOne(token, dropID, "k"+strconv.Itoa(i))
			at := time.Now()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failure = err
			case len(resp.Errors) == 0:
				accepted++
				if at.After(lastAccepted) {
					lastAccepted = at
				}
			default:
				refused[resp.Errors[0].Extensions.Code]++
			}
		})
	}
	close(start)
	wg.Wait()
	if failure != nil {
		t.Fatal(failure)
	}
	if accepted+refused[domain.SoldOut] != buyers {
		t.Fatalf("stampede: %d accepted, refused %v; want every refusal SOLD_OUT", accepted, refused)
	}
	return accepted, lastAccepted
}

// dropUpdatedQuery is what the live clients of a drop page subscribe to.
const dropUpdatedQuery = `subscription($id: ID!) { dropUpdated(dropId: $id) { status stock { available reserved sold total } drop { id } } }`

type dropUpdateData struct {
	DropUpdated struct {
		Status string
		Stock  struct{ Available, Reserved, Sold, Total int }
		Drop   struct{ ID string }
	}
}

// untilSoldOut reads a drop subscription until it says SOLD_OUT with nothing
// available, checking every state on the way is whole, and returns when the
// client read that state and how many messages it took.
func untilSoldOut(t testing.TB, s *liveStream, total int) (at time.Time, messages int) {
	t.Helper()
	for {
		ev := s.next(t, liveWithin)
		if ev.Kind != "next" {
			t.Fatalf("%s: got %s %s before SOLD_OUT", s.name, ev.Kind, ev.Payload)
		}
		messages++
		var p struct{ Data dropUpdateData }
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatalf("%s: decode %s: %v", s.name, ev.Payload, err)
		}
		u := p.Data.DropUpdated
		if st := u.Stock; st.Available+st.Reserved+st.Sold != st.Total || st.Total != total {
			t.Fatalf("%s: stock %+v does not add up to %d", s.name, st, total)
		}
		if u.Status == "SOLD_OUT" && u.Stock.Available == 0 {
			return ev.At, messages
		}
		if u.Status != "LIVE" {
			t.Fatalf("%s: status %s before selling out", s.name, u.Status)
		}
	}
}

// slowReader subscribes to the drop on a WebSocket it never reads again,
// asking for a few megabytes per update, so the server's writes to it block
// once the socket buffers fill: the server's state for it is stuck.
func (a *testApp) slowReader(t testing.TB, dropID string) *websocket.Conn {
	t.Helper()
	ws := a.wsHandshake(t, protoTransportWS, "")
	t.Cleanup(func() { ws.Close() })
	var q strings.Builder
	q.WriteString(`subscription($id: ID!) { dropUpdated(dropId: $id) { status stock { available } drop { product { `)
	for i := range 1000 {
		fmt.Fprintf(&q, "d%d: description ", i)
	}
	q.WriteString(`} } } }`)
	if err := ws.WriteJSON(wsMessage{ID: "1", Type: "subscribe", Payload: liveJSON(t, gqlRequest{Query: q.String(), Variables: map[string]any{"id": dropID}})}); err != nil {
		t.Fatal(err)
	}
	return ws
}

// TestLiveStampedeReachesEverySubscriber sells out a drop to a stampede of
// buyers while clients watch it over each transport: each gets the snapshot
// first, then SOLD_OUT with nothing available within 2 s of the last
// accepted order; a client that never reads holds none of them up, and when
// it reads at last it gets the newest state, not the backlog.
func TestLiveStampedeReachesEverySubscriber(t *testing.T) {
	app := startApp(t)
	const stock, buyers = 20, 100
	creatorToken, productID, dropID := app.startLiveDrop(t, stock)
	// Each of the slow reader's updates carries the description 1000 times.
	app.mustGQL(t, creatorToken, `mutation($in: UpdateProductInput!) { updateProduct(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"id": productID, "description": strings.Repeat("x", 5000)}}, nil)
	_, viewer := app.mustNewUser(t, uniqueHandle("watcher"))

	slow := app.slowReader(t, dropID)
	streams := []*liveStream{
		app.dialLive(t, protoTransportWS, viewer).subscribe(t, dropUpdatedQuery, map[string]any{"id": dropID}, 1024),
		app.dialLive(t, protoLegacyWS, viewer).subscribe(t, dropUpdatedQuery, map[string]any{"id": dropID}, 1024),
		app.sseSubscribe(t, viewer, dropUpdatedQuery, map[string]any{"id": dropID}),
	}
	streams[0].name, streams[1].name = protoTransportWS, protoLegacyWS
	for _, s := range streams {
		var first dropUpdateData
		s.mustResult(t, &first)
		u := first.DropUpdated
		if u.Status != "LIVE" || u.Stock.Available != stock || u.Stock.Total != stock || u.Drop.ID != dropID {
			t.Fatalf("%s: first message %+v, want the live drop with all %d units", s.name, u, stock)
		}
	}

	accepted, last := app.stampede(t, dropID, buyers)
	if accepted != stock {
		t.Fatalf("%d orders accepted, want %d", accepted, stock)
	}
	for _, s := range streams {
		at, n := untilSoldOut(t, s, stock)
		lag := at.Sub(last)
		t.Logf("%s: SOLD_OUT %v after the last accepted order (%d messages)", s.name, lag.Round(time.Millisecond), n)
		if lag > 2*time.Second {
			t.Errorf("%s: SOLD_OUT came %v after the last accepted order, want under 2s", s.name, lag)
		}
	}

	// The slow reader, reading at last, catches up to SOLD_OUT: conflated,
	// never dropped.
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	for n := 1; ; n++ {
		var m struct {
			Type    string
			Payload struct{ Data dropUpdateData }
		}
		if err := slow.ReadJSON(&m); err != nil {
			t.Fatalf("slow reader: %v", err)
		}
		if m.Type != "next" {
			continue
		}
		if u := m.Payload.Data.DropUpdated; u.Status == "SOLD_OUT" && u.Stock.Available == 0 {
			t.Logf("slow reader: SOLD_OUT in its message %d", n)
			break
		}
	}
}

// liveSubscribers reads the hub's gauge of open subscriptions, all kinds.
func liveSubscribers(t testing.TB) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() == "livedrops_live_subscribers" {
			for _, m := range f.GetMetric() {
				n += m.GetGauge().GetValue()
			}
		}
	}
	return n
}

// settle collects garbage until the heap stops shrinking and returns its
// size and the goroutine count.
func settle() (heap uint64, goroutines int) {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, runtime.NumGoroutine()
}

// TestLiveSubscriptionsReleaseEverything opens 1,000 subscriptions over ten
// WebSockets, ends half with a stop message and half by closing their
// connections, and checks the server's goroutines, heap and hub come back
// to where they were. It also checks a connection's cap on subscriptions.
func TestLiveSubscriptionsReleaseEverything(t *testing.T) {
	app := startApp(t)
	creatorToken, productID, _ := app.startLiveDrop(t, 50)
	drops := []string{}
	for range 5 {
		id := app.scheduleLiveDrop(t, creatorToken, productID, 50)
		drops = append(drops, id)
	}
	_, token := app.mustNewUser(t, uniqueHandle("fan"))
	_, creatorID := app.makeCreator(t)

	// Warm up what a first subscription sets up once (pools, label values).
	warm := app.dialLive(t, protoTransportWS, token)
	warm.subscribe(t, dropUpdatedQuery, map[string]any{"id": drops[0]}, 8).mustResult(t, nil)
	warm.close()
	eventually(t, 10*time.Second, func() string {
		if n := liveSubscribers(t); n != 0 {
			return fmt.Sprintf("%v subscriptions still open after the warm-up", n)
		}
		return ""
	})
	heap0, goroutines0 := settle()
	subs0 := liveSubscribers(t)

	const conns, perConn = 10, resolvers.MaxSubscriptionsPerStream
	var all []*liveConn
	var streams []*liveStream
	for i := range conns {
		proto := protoTransportWS
		if i%2 == 1 {
			proto = protoLegacyWS
		}
		c := app.dialLive(t, proto, token)
		all = append(all, c)
		for j := range perConn {
			var s *liveStream
			switch j % 10 {
			case 8:
				s = c.subscribe(t, `subscription { notificationAdded { id kind } }`, nil, 4)
			case 9:
				s = c.subscribe(t, `subscription($ids: [ID!]) { dropEvents(creatorIds: $ids) { kind at } }`, map[string]any{"ids": []string{creatorID}}, 4)
			default:
				s = c.subscribe(t, dropUpdatedQuery, map[string]any{"id": drops[(i+j)%len(drops)]}, 4)
			}
			streams = append(streams, s)
		}
	}
	// Every drop subscription gets its snapshot; all of them are in the hub.
	for i, s := range streams {
		if i%10 < 8 {
			s.mustResult(t, nil)
		}
	}
	eventually(t, 10*time.Second, func() string {
		if n := liveSubscribers(t) - subs0; n != conns*perConn {
			return fmt.Sprintf("%v subscriptions open in the hub, want %d", n, conns*perConn)
		}
		return ""
	})
	_, goroutinesOpen := settle()
	t.Logf("goroutines: %d before, %d with %d subscriptions open", goroutines0, goroutinesOpen, conns*perConn)

	// One more on a full connection is refused; after a stop there is room.
	over := all[0].subscribe(t, dropUpdatedQuery, map[string]any{"id": drops[0]}, 4)
	over.refused(t, domain.LimitExceeded)
	streams[0].stop()
	streams[0].ended(t)
	again := all[0].subscribe(t, dropUpdatedQuery, map[string]any{"id": drops[0]}, 4)
	again.mustResult(t, nil)
	again.stop()
	again.ended(t)

	// Half the connections stop each subscription, the other half just close.
	for i, c := range all {
		if i%2 == 0 {
			for _, s := range streams[i*perConn+1 : (i+1)*perConn] {
				s.stop()
			}
			for _, s := range streams[i*perConn+1 : (i+1)*perConn] {
				s.ended(t)
			}
		}
		c.close()
	}
	eventually(t, 15*time.Second, func() string {
		heap, goroutines := settle()
		subs := liveSubscribers(t)
		const heapSlack = 2 << 20
		if subs != subs0 || goroutines > goroutines0+5 || heap > heap0+heapSlack {
			return fmt.Sprintf("after closing: %v subscriptions (was %v), %d goroutines (was %d), heap %d KiB (was %d KiB)",
				subs, subs0, goroutines, goroutines0, heap>>10, heap0>>10)
		}
		t.Logf("after closing: %d goroutines (was %d), heap %d KiB (was %d KiB)", goroutines, goroutines0, heap>>10, heap0>>10)
		return ""
	})
}

// notificationCount counts the notifications of kind about a drop.
func (a *testApp) notificationCount(t testing.TB, dropID string, kind domain.NotificationKind) int {
	t.Helper()
	var n int
	if err := a.DB.GetContext(context.Background(), &n, `SELECT count(*) FROM notifications WHERE drop_id = $1 AND kind = $2`,
		liveKey(t, dropID), string(kind)); err != nil {
		t.Fatal(err)
	}
	return n
}

// addFollowers makes n new users follow the creator, in one statement.
func (a *testApp) addFollowers(t testing.TB, creatorID string, n int) {
	t.Helper()
	_, err := a.DB.ExecContext(context.Background(), `WITH u AS (
			INSERT INTO users (handle, display_name, password_hash)
			SELECT $2 || g, 'Fan ' || g, '!' FROM generate_series(1, $3) AS g RETURNING id),
		f AS (INSERT INTO follows (creator_id, follower_id) SELECT $1::bigint, id FROM u)
		UPDATE creators SET follower_count = follower_count + $3 WHERE id = $1`,
		liveKey(t, creatorID), uniqueHandle("fan")+"_", n)
	if err != nil {
		t.Fatalf("add %d followers: %v", n, err)
	}
}

type notificationData struct {
	NotificationAdded struct {
		ID, Kind string
		Drop     struct{ ID string }
		Creator  struct{ ID string }
	}
}

type dropEventData struct {
	DropEvents struct {
		Kind string
		Drop struct{ ID string }
	}
}

// TestLiveFollowerFanOut starts a drop of a creator with 5,000 followers:
// each gets one DROP_STARTED notification, once, even when the event is
// delivered twice; an online follower sees it live, and sees DROP_STARTED in
// dropEvents of the creators it follows.
func TestLiveFollowerFanOut(t *testing.T) {
	app := startApp(t)
	const followers = 5000
	creatorToken, creatorID := app.makeCreator(t)
	productID := app.createProduct(t, creatorToken, "Jacket")
	_, fanToken := app.mustNewUser(t, uniqueHandle("online"))
	app.mustGQL(t, fanToken, `mutation($id: ID!) { follow(creatorId: $id) { id } }`, map[string]any{"id": creatorID}, nil)
	app.addFollowers(t, creatorID, followers-1)

	conn := app.dialLive(t, protoTransportWS, fanToken)
	notes := conn.subscribe(t, `subscription { notificationAdded { id kind drop { id } creator { id } } }`, nil, 64)
	news := conn.subscribe(t, `subscription { dropEvents { kind drop { id } } }`, nil, 64)
	// Subscriptions register asynchronously: wait until both are in the hub.
	eventually(t, liveWithin, func() string {
		if n := liveSubscribers(t); n < 2 {
			return fmt.Sprintf("%v subscriptions open, want 2", n)
		}
		return ""
	})

	dropID := app.scheduleLiveDrop(t, creatorToken, productID, 10)
	sentinelID := app.scheduleLiveDrop(t, creatorToken, productID, 10)
	// nextOf reads the online follower's notifications until one of kind about dropID.
	nextOf := func(kind, dropID string) notificationData {
		for {
			var n notificationData
			notes.mustResult(t, &n)
			if n.NotificationAdded.Kind == kind && n.NotificationAdded.Drop.ID == dropID {
				return n
			}
			if n.NotificationAdded.Kind != "DROP_SCHEDULED" {
				t.Fatalf("unexpected notification %+v", n)
			}
		}
	}
	nextOf("DROP_SCHEDULED", dropID)
	nextOf("DROP_SCHEDULED", sentinelID)
	for _, id := range []string{dropID, sentinelID} {
		var e dropEventData
		news.mustResult(t, &e)
		if e.DropEvents.Kind != "DROP_SCHEDULED" || e.DropEvents.Drop.ID != id {
			t.Fatalf("dropEvents sent %+v, want DROP_SCHEDULED of %s", e, id)
		}
	}

	started := time.Now()
	app.dropMutation(t, creatorToken, "startDrop", dropID)
	var e dropEventData
	news.mustResult(t, &e)
	if e.DropEvents.Kind != "DROP_STARTED" || e.DropEvents.Drop.ID != dropID {
		t.Fatalf("dropEvents sent %+v, want DROP_STARTED of %s", e, dropID)
	}
	t.Logf("dropEvents: DROP_STARTED %v after startDrop", time.Since(started).Round(time.Millisecond))
	n := nextOf("DROP_STARTED", dropID)
	t.Logf("notificationAdded: DROP_STARTED %v after startDrop", time.Since(started).Round(time.Millisecond))
	if n.NotificationAdded.Creator.ID != creatorID {
		t.Fatalf("notification %+v is not about creator %s", n, creatorID)
	}
	eventually(t, 30*time.Second, func() string {
		if got := app.notificationCount(t, dropID, domain.NotificationDropStarted); got != followers {
			return fmt.Sprintf("%d DROP_STARTED notifications, want %d", got, followers)
		}
		return ""
	})
	t.Logf("all %d followers notified %v after startDrop", followers, time.Since(started).Round(time.Millisecond))

	// Deliver DropStarted again, then, behind it on its partition, a
	// DropStarted of the second drop: once that one is handled, so was the copy.
	var raw []byte
	if err := app.DB.GetContext(context.Background(), &raw, `SELECT payload FROM outbox WHERE type = $1 AND key = $2`,
		domain.EventDropStarted, "drop:"+strconv.FormatInt(liveKey(t, dropID), 10)); err != nil {
		t.Fatal(err)
	}
	var again domain.Event
	if err := json.Unmarshal(raw, &again); err != nil || again.ID == "" {
		t.Fatalf("decode the DropStarted envelope %s: %v", raw, err)
	}
	sentinel, err := store.NewEvent(domain.EventDropStarted, again.Key, domain.DropPayload{
		DropID: liveKey(t, sentinelID), CreatorID: liveKey(t, creatorID), Status: domain.DropLive,
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := app.App.producer.Publish(context.Background(), app.Config.KafkaTopic, []domain.Event{again, sentinel}); err != nil {
		t.Fatal(err)
	}
	nextOf("DROP_STARTED", sentinelID)
	eventually(t, 30*time.Second, func() string {
		if got := app.notificationCount(t, sentinelID, domain.NotificationDropStarted); got != followers {
			return fmt.Sprintf("%d DROP_STARTED notifications of the second drop, want %d", got, followers)
		}
		return ""
	})
	if got := app.notificationCount(t, dropID, domain.NotificationDropStarted); got != followers {
		t.Fatalf("%d DROP_STARTED notifications after the event came twice, want %d", got, followers)
	}
	news.mustResult(t, &e)
	if e.DropEvents.Kind != "DROP_STARTED" || e.DropEvents.Drop.ID != sentinelID {
		t.Fatalf("dropEvents sent %+v, want DROP_STARTED of the second drop only (the copy is ignored)", e)
	}
	notes.quiet(t, 300*time.Millisecond)
	news.quiet(t, 0)
}

// TestLiveNotificationsPagingAndRead pages through a follower's
// notifications both ways, unread first, marks some and then all read, and
// checks only their owner sees them.
func TestLiveNotificationsPagingAndRead(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	creatorToken, creatorID := app.makeCreator(t)
	productID := app.createProduct(t, creatorToken, "Cap")
	owner, token := app.mustNewUser(t, uniqueHandle("reader"))
	_, otherToken := app.mustNewUser(t, uniqueHandle("other"))
	for _, tok := range []string{token, otherToken} {
		app.mustGQL(t, tok, `mutation($id: ID!) { follow(creatorId: $id) { id } }`, map[string]any{"id": creatorID}, nil)
	}
	var dropIDs []string
	for range 5 {
		dropIDs = append(dropIDs, app.scheduleLiveDrop(t, creatorToken, productID, 5))
	}
	const listQuery = `query($unread: Boolean, $first: Int, $after: String, $last: Int, $before: String) { viewer {
		notifications(unreadFirst: $unread, first: $first, after: $after, last: $last, before: $before) {
			edges { cursor node { id kind drop { id } creator { id } readAt } }
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`
	type page struct {
		Viewer struct {
			Notifications struct {
				Edges []struct {
					Cursor string
					Node   struct {
						ID, Kind string
						Drop     struct{ ID string }
						Creator  struct{ ID string }
						ReadAt   *time.Time
					}
				}
				PageInfo struct {
					HasNextPage, HasPreviousPage bool
					StartCursor, EndCursor       *string
				}
			}
		}
	}
	list := func(tok string, vars map[string]any) page {
		var p page
		app.mustGQL(t, tok, listQuery, vars, &p)
		return p
	}
	eventually(t, 30*time.Second, func() string {
		if n := len(list(token, map[string]any{"first": 10}).Viewer.Notifications.Edges); n != 5 {
			return fmt.Sprintf("%d notifications, want 5", n)
		}
		return ""
	})

	// Newest first, two at a time, forward then back.
	var ids []string
	var after any
	for {
		p := list(token, map[string]any{"first": 2, "after": after}).Viewer.Notifications
		for _, e := range p.Edges {
			ids = append(ids, e.Node.ID)
			if e.Node.Kind != "DROP_SCHEDULED" || e.Node.Creator.ID != creatorID || e.Node.ReadAt != nil {
				t.Fatalf("notification %+v", e.Node)
			}
		}
		if !p.PageInfo.HasNextPage {
			break
		}
		after = *p.PageInfo.EndCursor
	}
	if len(ids) != 5 {
		t.Fatalf("forward walk: %d notifications, want 5", len(ids))
	}
	back := list(token, map[string]any{"last": 2, "before": list(token, map[string]any{"first": 4}).Viewer.Notifications.PageInfo.EndCursor}).Viewer.Notifications
	if len(back.Edges) != 2 || back.Edges[0].Node.ID != ids[1] || back.Edges[1].Node.ID != ids[2] || !back.PageInfo.HasPreviousPage {
		t.Fatalf("backward page %+v, want %v", back, ids[1:3])
	}
	var about []string
	for _, e := range list(token, map[string]any{"first": 5}).Viewer.Notifications.Edges {
		about = append(about, e.Node.Drop.ID)
	}
	slices.Sort(about)
	if want := slices.Sorted(slices.Values(dropIDs)); !slices.Equal(about, want) {
		t.Fatalf("notifications are about %v, want one per drop %v", about, want)
	}

	// Marking: two of them, again (nothing changes), someone else's, then all.
	var marked struct{ MarkNotificationsRead int }
	const mark = `mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }`
	app.mustGQL(t, token, mark, map[string]any{"ids": []string{ids[0], ids[3]}}, &marked)
	if marked.MarkNotificationsRead != 2 {
		t.Fatalf("marked %d, want 2", marked.MarkNotificationsRead)
	}
	app.mustGQL(t, token, mark, map[string]any{"ids": []string{ids[0], ids[3]}}, &marked)
	if marked.MarkNotificationsRead != 0 {
		t.Fatalf("marked %d again, want 0", marked.MarkNotificationsRead)
	}
	app.mustGQL(t, otherToken, mark, map[string]any{"ids": []string{ids[1]}}, &marked)
	if marked.MarkNotificationsRead != 0 {
		t.Fatalf("someone else marked %d of the user's notifications", marked.MarkNotificationsRead)
	}
	unread := list(token, map[string]any{"unread": true, "first": 5}).Viewer.Notifications
	var order []string
	for _, e := range unread.Edges {
		order = append(order, e.Node.ID)
	}
	if want := []string{ids[1], ids[2], ids[4], ids[0], ids[3]}; !slices.Equal(order, want) {
		t.Fatalf("unread first: %v, want %v", order, want)
	}
	if unread.Edges[2].Node.ReadAt != nil || unread.Edges[3].Node.ReadAt == nil {
		t.Fatalf("readAt of the unread-first page: %+v", unread.Edges)
	}
	tail := list(token, map[string]any{"unread": true, "first": 2, "after": unread.Edges[2].Cursor}).Viewer.Notifications
	if len(tail.Edges) != 2 || tail.Edges[0].Node.ID != ids[0] || tail.PageInfo.HasNextPage {
		t.Fatalf("unread-first page after the unread run: %+v", tail)
	}
	app.mustGQL(t, token, `mutation { markNotificationsRead }`, nil, &marked)
	if marked.MarkNotificationsRead != 3 {
		t.Fatalf("marking all read changed %d, want 3", marked.MarkNotificationsRead)
	}

	// Bad input, and what others see.
	app.wantError(t, token, mark, map[string]any{"ids": []string{dropIDs[0]}}, domain.BadUserInput, "ids")
	app.wantError(t, "", mark, nil, domain.Unauthenticated, "")
	app.wantError(t, otherToken, `query($id: ID!) { node(id: $id) { ... on User { notifications { edges { cursor } } } } }`,
		map[string]any{"id": domain.GlobalID(domain.TypeUser, owner.ID)}, domain.Forbidden, "")
	nodeQuery := `query($id: ID!) { node(id: $id) { id ... on Notification { kind drop { id } } } }`
	var node struct{ Node *struct{ ID, Kind string } }
	app.mustGQL(t, token, nodeQuery, map[string]any{"id": ids[0]}, &node)
	if node.Node == nil || node.Node.ID != ids[0] || node.Node.Kind != "DROP_SCHEDULED" {
		t.Fatalf("node(id) of the owner's notification: %+v", node.Node)
	}
	for _, tok := range []string{otherToken, ""} {
		app.mustGQL(t, tok, nodeQuery, map[string]any{"id": ids[0]}, &node)
		if node.Node != nil {
			t.Fatalf("node(id) of someone else's notification: %+v", node.Node)
		}
	}
}

// TestLiveSubscriptionRules checks who may subscribe to what, bad and
// unknown ids, and the streams that complete: an order once settled, a drop
// once ended.
func TestLiveSubscriptionRules(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	creatorToken, _, dropID := app.startLiveDrop(t, 5)
	_, buyerToken := app.mustNewUser(t, uniqueHandle("buyer"))
	_, strangerToken := app.mustNewUser(t, uniqueHandle("stranger"))
	resp, err := app.placeOne(buyerToken, dropID, "only")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Errors) > 0 {
		t.Fatalf("place order: %s", describeErrors(resp.Errors))
	}
	orderID := decode[struct{ PlaceOrder struct{ ID string } }](t, resp.Data).PlaceOrder.ID
	const orderQuery = `subscription($id: ID!) { orderUpdated(orderId: $id) { id status } }`

	anon := app.dialLive(t, protoTransportWS, "")
	stranger := app.dialLive(t, protoLegacyWS, strangerToken)
	buyer := app.dialLive(t, protoTransportWS, buyerToken)
	for _, c := range []struct {
		name  string
		conn  *liveConn
		query string
		vars  map[string]any
		code  string
	}{
		{"someone else's order", stranger, orderQuery, map[string]any{"id": orderID}, domain.Forbidden},
		{"an order, anonymous", anon, orderQuery, map[string]any{"id": orderID}, domain.Unauthenticated},
		{"an unknown order", buyer, orderQuery, map[string]any{"id": domain.GlobalID(domain.TypeOrder, 999999)}, domain.NotFound},
		{"a drop id as an order id", buyer, orderQuery, map[string]any{"id": dropID}, domain.BadUserInput},
		{"a malformed drop id", anon, dropUpdatedQuery, map[string]any{"id": "not-an-id"}, domain.BadUserInput},
		{"an order id as a drop id", anon, dropUpdatedQuery, map[string]any{"id": orderID}, domain.BadUserInput},
		{"an unknown drop", anon, dropUpdatedQuery, map[string]any{"id": domain.GlobalID(domain.TypeDrop, 999999)}, domain.NotFound},
		{"notifications, anonymous", anon, `subscription { notificationAdded { id } }`, nil, domain.Unauthenticated},
		{"followed creators, anonymous", anon, `subscription { dropEvents { kind } }`, nil, domain.Unauthenticated},
		{"a bad creator id", buyer, `subscription($ids: [ID!]) { dropEvents(creatorIds: $ids) { kind } }`, map[string]any{"ids": []string{dropID}}, domain.BadUserInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.conn.subscribe(t, c.query, c.vars, 4).refused(t, c.code)
		})
	}
	// SSE refuses the same way.
	app.sseSubscribe(t, "", dropUpdatedQuery, map[string]any{"id": "not-an-id"}).refused(t, domain.BadUserInput)

	// The buyer's order: as it is, then confirmed, then the stream completes.
	order := buyer.subscribe(t, orderQuery, map[string]any{"id": orderID}, 8)
	var o struct{ OrderUpdated struct{ ID, Status string } }
	order.mustResult(t, &o)
	if o.OrderUpdated.ID != orderID || o.OrderUpdated.Status != "PENDING_PAYMENT" {
		t.Fatalf("first orderUpdated %+v", o)
	}
	app.mustGQL(t, buyerToken, `mutation($in: PayOrderInput!) { payOrder(input: $in) { status } }`,
		map[string]any{"in": map[string]any{"orderId": orderID, "paymentMethod": "pm_card_visa"}}, nil)
	order.mustResult(t, &o)
	if o.OrderUpdated.Status != "CONFIRMED" {
		t.Fatalf("orderUpdated after payment %+v", o)
	}
	order.ended(t)

	// A drop's stream: the snapshot, then ENDED, then it completes.
	drop := anon.subscribe(t, dropUpdatedQuery, map[string]any{"id": dropID}, 8)
	var u dropUpdateData
	drop.mustResult(t, &u)
	if u.DropUpdated.Status != "LIVE" || u.DropUpdated.Stock.Sold != 1 {
		t.Fatalf("dropUpdated snapshot %+v", u)
	}
	app.dropMutation(t, creatorToken, "endDrop", dropID)
	for u.DropUpdated.Status != "ENDED" {
		drop.mustResult(t, &u)
	}
	drop.ended(t)
}

// TestLiveCacheInvalidationAcrossInstances changes a product through one
// instance while another has it cached in the shared Redis: once the
// ProductUpdated event is handled, the other never serves the old value.
func TestLiveCacheInvalidationAcrossInstances(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	b := startApp(t, func(c *config.Config) {
		c.DatabaseURL, c.RedisPrefix, c.KafkaTopic = a.Config.DatabaseURL, a.Config.RedisPrefix, a.Config.KafkaTopic
		c.S3Bucket, c.MediaBaseURL = a.Config.S3Bucket, a.Config.MediaBaseURL
	})
	creatorToken, _ := a.makeCreator(t)
	productID := a.createProduct(t, creatorToken, "Original")
	key := liveKey(t, productID)
	const productQuery = `query($id: ID!) { product(id: $id) { title media { id } } }`
	type productData struct {
		Product struct {
			Title string
			Media []struct{ ID string }
		}
	}
	readB := func() productData {
		var p productData
		b.mustGQL(t, "", productQuery, map[string]any{"id": productID}, &p)
		return p
	}
	cached := func(kind string) bool {
		n, err := b.App.Redis.Exists(context.Background(), b.Config.RedisPrefix+kind+":"+strconv.FormatInt(key, 10)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	// The product's creation has its own ProductUpdated, which may evict
	// what B caches before it is handled: read until B's copy stays, in
	// Redis (B's near cache emptied first, so each read goes there) and in
	// B's memory.
	eventually(t, 30*time.Second, func() string {
		b.App.Near.Clear()
		if p := readB(); p.Product.Title != "Original" || !cached("product") || !cached("product_media") {
			return fmt.Sprintf("instance B read %+v; cached: product %v, media %v", p, cached("product"), cached("product_media"))
		}
		return ""
	})

	// Through A's API: A evicts Redis at once; B's response cache drops its
	// copy when the event arrives.
	a.mustGQL(t, creatorToken, `mutation($in: UpdateProductInput!) { updateProduct(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"id": productID, "title": "Renamed"}}, nil)
	eventually(t, liveWithin, func() string {
		if p := readB(); p.Product.Title != "Renamed" {
			return fmt.Sprintf("B serves %q after A's update", p.Product.Title)
		}
		return ""
	})

	// A write whose own eviction did not happen (a read racing the write put
	// the old value back): only the event evicts it.
	p, err := a.DB.ProductsByIDs(context.Background(), []int64{key})
	if err != nil || len(p) != 1 {
		t.Fatalf("read product: %v", err)
	}
	p[0].Title = "Changed by an event"
	if err := a.DB.UpdateProduct(context.Background(), &p[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.DB.CreateMedia(context.Background(), &domain.Media{ProductID: key, Key: "products/x.png", ContentType: "image/png", ByteSize: 10}); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	eventually(t, 30*time.Second, func() string {
		if p := readB(); p.Product.Title != "Changed by an event" || len(p.Product.Media) != 1 {
			return fmt.Sprintf("B still serves %+v", p)
		}
		return ""
	})
	t.Logf("B fresh %v after the write", time.Since(changed).Round(time.Millisecond))
	for range 20 {
		if p := readB(); p.Product.Title != "Changed by an event" || len(p.Product.Media) != 1 {
			t.Fatalf("B served %+v after the invalidation", p)
		}
	}
}
