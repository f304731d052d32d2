package gql

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// A Conn answers as a Client does, keeps its one connection, and opens
// another when the server closes it, after an answer or while idle.
func TestConnReusesItsConnectionAndReopensAClosedOne(t *testing.T) {
	var (
		mu    sync.Mutex
		peers = map[string]int{}
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peers[r.RemoteAddr]++
		mu.Unlock()
		if r.Header.Get("Authorization") == "Bearer closing" {
			w.Header().Set("Connection", "close")
		}
		if r.Header.Get("Authorization") == "Bearer soldout" {
			w.Write([]byte(`{"errors":[{"message":"sold out","extensions":{"code":"SOLD_OUT"}}],"data":null}`))
			return
		}
		w.Write([]byte(`{"data":{"x":1}}`))
	}))
	srv.Config.IdleTimeout = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()
	ctx := context.Background()
	c, err := Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out struct{ X int }
	for range 3 {
		if err := c.Do(ctx, "tok", "{ x }", map[string]any{"n": 1}, &out); err != nil || out.X != 1 {
			t.Fatalf("Do: %v %+v", err, out)
		}
	}
	if err := c.Do(ctx, "soldout", "{ x }", nil, nil); CodeOf(err) != "SOLD_OUT" {
		t.Fatalf("an answer with errors: %v", err)
	}
	if len(peers) != 1 {
		t.Fatalf("%d connections for 4 requests, want 1", len(peers))
	}
	if err := c.Do(ctx, "closing", "{ x }", nil, &out); err != nil {
		t.Fatalf("an answer closing the connection: %v", err)
	}
	if err := c.Do(ctx, "tok", "{ x }", nil, &out); err != nil || len(peers) != 2 {
		t.Fatalf("after a closing answer: %v, %d connections, want 2", err, len(peers))
	}
	time.Sleep(idleCheck + 100*time.Millisecond) // past the server's idle timeout, and the idle check's
	if err := c.Do(ctx, "tok", "{ x }", nil, &out); err != nil || len(peers) != 3 {
		t.Fatalf("after the server closed an idle connection: %v, %d connections, want 3", err, len(peers))
	}
	if _, err := Dial(ctx, "https://example.invalid/query"); err == nil {
		t.Fatal("Dial took an https URL")
	}
}

// Post hands back the answer's status and bytes untouched, errors included.
func TestConnPostReturnsTheAnswerAsSent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte(`{"errors":[{"message":"no"}]}`))
	}))
	defer srv.Close()
	c, err := Dial(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	status, raw, err := c.Post(context.Background(), "", []byte(`{"query":"{ x }"}`))
	if err != nil || status != http.StatusTeapot || string(raw) != `{"errors":[{"message":"no"}]}` {
		t.Fatalf("Post = %d %q %v", status, raw, err)
	}
}
