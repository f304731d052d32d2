package gql

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Query     string
			Variables map[string]any
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("server: bad body: %v", err)
		}
		switch {
		case strings.Contains(req.Query, "ok"):
			if r.Header.Get("Authorization") != "Bearer tok" || req.Variables["n"] != float64(3) {
				t.Errorf("server: auth %q, vars %v", r.Header.Get("Authorization"), req.Variables)
			}
			w.Write([]byte(`{"data":{"placeOrder":{"id":"T3JkZXI6MQ","status":"PENDING_PAYMENT"}}}`))
		case strings.Contains(req.Query, "soldout"):
			w.Write([]byte(`{"errors":[{"message":"sold out","path":["placeOrder"],"extensions":{"code":"SOLD_OUT"}}],"data":null}`))
		case strings.Contains(req.Query, "empty"):
			w.Write([]byte(`{"data":null}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`<html>bad gateway</html>`))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, 4)
	defer c.Close()
	ctx := context.Background()

	var out struct {
		PlaceOrder struct{ ID, Status string }
	}
	if err := c.Do(ctx, "tok", "mutation ok", map[string]any{"n": 3}, &out); err != nil {
		t.Fatalf("Do ok: %v", err)
	}
	if out.PlaceOrder.ID != "T3JkZXI6MQ" || out.PlaceOrder.Status != "PENDING_PAYMENT" {
		t.Errorf("decoded %+v", out)
	}

	err := c.Do(ctx, "", "mutation soldout", nil, &out)
	if CodeOf(err) != "SOLD_OUT" {
		t.Errorf("Do soldout: err %v, code %q", err, CodeOf(err))
	}
	if err := c.Do(ctx, "", "empty", nil, &out); err == nil || CodeOf(err) != "" {
		t.Errorf("Do with null data: %v", err)
	}
	if err := c.Do(ctx, "", "garbage", nil, &out); err == nil || CodeOf(err) != "" || !strings.Contains(err.Error(), "502") {
		t.Errorf("Do with a non-GraphQL answer: %v", err)
	}
}

// However many requests are in flight, the client never opens more
// connections than it was given.
func TestNewCapsConnections(t *testing.T) {
	var (
		mu    sync.Mutex
		peers = map[string]bool{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peers[r.RemoteAddr] = true
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		w.Write([]byte(`{"data":{"x":1}}`))
	}))
	defer srv.Close()
	c := New(srv.URL, 3)
	defer c.Close()
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Do(context.Background(), "", "{x}", nil, nil); err != nil {
				t.Errorf("Do: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(peers) > 3 || len(peers) == 0 {
		t.Errorf("client used %d connections, want 1 to 3", len(peers))
	}
}
