package internalapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"livedrops/cache"
	"livedrops/domain"
	"livedrops/drops"
	"livedrops/internalapi"
	"livedrops/orders"
	"livedrops/orders/orderstest"
	"livedrops/payments"
)

const token = "internal-test-token"

var secret = []byte("internal-webhook-secret-0123456789")

type env struct {
	*orderstest.World
	gate *orders.Gate
	kv   *cache.Cache
	srv  *httptest.Server
}

func newEnv(t *testing.T) *env {
	w := orderstest.New(t)
	gate := orders.NewGate(w.Redis, w.Prefix)
	t.Cleanup(func() { gate.Close() })
	kv := cache.New(w.Redis, w.Prefix, time.Minute)
	h := internalapi.New(internalapi.Options{
		DB: w.DB, Drops: drops.New(w.DB, gate), Orders: orders.New(w.DB, gate, payments.NewSimulated(), w.Redis, w.Config),
		Cache: kv, Token: token, WebhookSecret: secret,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{World: w, gate: gate, kv: kv, srv: srv}
}

// post sends body to path with the given bearer token ("" for none) and decodes the answer.
func (e *env) post(t *testing.T, path, bearer, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func TestTokenIsRequired(t *testing.T) {
	e := newEnv(t)
	d := e.LiveDrop(t, 5, 1)
	body := fmt.Sprintf(`{"dropId": %d, "delta": 5}`, d.ID)
	for _, bearer := range []string{"", "wrong", token + "x", strings.ToUpper(token)} {
		if code, _ := e.post(t, "/internal/inventory/adjust", bearer, body); code != http.StatusUnauthorized {
			t.Fatalf("token %q: status %d", bearer, code)
		}
	}
	if code, _ := e.post(t, "/internal/cache/invalidate", "", `{"kind":"product","ids":[1]}`); code != http.StatusUnauthorized {
		t.Fatalf("invalidate without token: %d", code)
	}
	if code, _ := e.post(t, "/internal/nothing-here", "", `{}`); code != http.StatusUnauthorized {
		t.Fatalf("unknown path without token: %d", code)
	}
	if code, _ := e.post(t, "/internal/nothing-here", token, `{}`); code != http.StatusNotFound {
		t.Fatalf("unknown path: %d", code)
	}
	if s := e.Stock(t, d.ID); s.Total != 5 {
		t.Fatalf("stock changed without a token: %+v", s)
	}
}

func TestAdjustInventory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.LiveDrop(t, 5, 1)
	if err := e.gate.Load(ctx, d.ID, 5); err != nil {
		t.Fatal(err)
	}
	code, out := e.post(t, "/internal/inventory/adjust", token, fmt.Sprintf(`{"dropId": %d, "delta": 7}`, d.ID))
	if code != http.StatusOK || out["stock"].(map[string]any)["available"].(float64) != 12 {
		t.Fatalf("restock: %d %v", code, out)
	}
	gid := domain.GlobalID(domain.TypeDrop, d.ID)
	code, out = e.post(t, "/internal/inventory/adjust", token, fmt.Sprintf(`{"dropId": %q, "delta": -2}`, gid))
	if code != http.StatusOK || out["stock"].(map[string]any)["total"].(float64) != 10 {
		t.Fatalf("shrink by global id: %d %v", code, out)
	}
	if n, _, _ := e.gate.Counter(ctx, d.ID); n != 10 {
		t.Fatalf("gate counter %d, want 10", n)
	}
	for _, tc := range []struct {
		body string
		code int
	}{
		{fmt.Sprintf(`{"dropId": %d, "delta": -11}`, d.ID), http.StatusConflict},
		{fmt.Sprintf(`{"dropId": %d, "delta": 0}`, d.ID), http.StatusBadRequest},
		{fmt.Sprintf(`{"dropId": %d, "delta": 2000000}`, d.ID), http.StatusBadRequest},
		{`{"dropId": 987654, "delta": 1}`, http.StatusNotFound},
		{`{"dropId": -3, "delta": 1}`, http.StatusBadRequest},
		{fmt.Sprintf(`{"dropId": %q, "delta": 1}`, domain.GlobalID(domain.TypeProduct, d.ID)), http.StatusBadRequest},
		{`{"dropId": 1, "delta": 1, "extra": true}`, http.StatusBadRequest},
		{`not json`, http.StatusBadRequest},
	} {
		if code, out := e.post(t, "/internal/inventory/adjust", token, tc.body); code != tc.code {
			t.Fatalf("%s: status %d (%v), want %d", tc.body, code, out, tc.code)
		}
	}
	if s := e.CheckBalance(t, d.ID); s.Total != 10 || s.Available != 10 {
		t.Fatalf("stock %+v", s)
	}
	if n := e.CountEvents(t, orderstest.DropKey(d.ID), domain.EventStockChanged); n != 2 {
		t.Fatalf("%d StockChanged events", n)
	}
}

func TestInvalidateCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []int64{1, 2, 3} {
		if err := e.Redis.Set(ctx, e.kv.Key(cache.KindProduct, id), "{}", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	code, out := e.post(t, "/internal/cache/invalidate", token, `{"kind":"product","ids":[1,3]}`)
	if code != http.StatusOK || out["evicted"].(float64) != 2 {
		t.Fatalf("invalidate: %d %v", code, out)
	}
	for id, want := range map[int64]int64{1: 0, 2: 1, 3: 0} {
		if n, err := e.Redis.Exists(ctx, e.kv.Key(cache.KindProduct, id)).Result(); err != nil || n != want {
			t.Fatalf("product %d cached: %d %v, want %d", id, n, err, want)
		}
	}
	for _, body := range []string{`{"kind":"","ids":[1]}`, `{"kind":"Product","ids":[1]}`, `{"kind":"product","ids":[]}`, `{"kind":"product","ids":[0]}`} {
		if code, _ := e.post(t, "/internal/cache/invalidate", token, body); code != http.StatusBadRequest {
			t.Fatalf("%s: status %d", body, code)
		}
	}
}

func TestWebhookIsMountedWithItsOwnAuth(t *testing.T) {
	e := newEnv(t)
	d := e.LiveDrop(t, 5, 1)
	buyer := e.User(t, "buyer")
	svc := orders.New(e.DB, e.gate, payments.NewSimulated(), e.Redis, e.Config)
	o, err := svc.PlaceOrder(context.Background(), buyer.ID, d.ID, 1, "k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(payments.Event{ID: "evt", Type: payments.EventSucceeded, ProviderRef: "ch", OrderID: o.ID})
	// The service token is no signature.
	if code, _ := e.post(t, "/internal/payments/webhook", token, string(body)); code != http.StatusUnauthorized {
		t.Fatalf("token instead of signature: %d", code)
	}
	sig := payments.Sign(secret, time.Now(), body)
	if code, out := e.post(t, "/internal/payments/webhook", "", string(body), payments.SignatureHeader, sig); code != http.StatusOK {
		t.Fatalf("signed webhook: %d %v", code, out)
	}
	if code, out := e.post(t, "/internal/payments/webhook", "", string(body), payments.SignatureHeader, sig); code != http.StatusOK || out["status"] != "duplicate" {
		t.Fatalf("replayed webhook: %d %v", code, out)
	}
	got, err := svc.OrderFor(context.Background(), buyer.ID, o.ID)
	if err != nil || got.Status != domain.OrderConfirmed {
		t.Fatalf("order after webhook: %+v %v", got, err)
	}
}
