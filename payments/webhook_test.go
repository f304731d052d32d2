package payments_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/orders"
	"livedrops/orders/orderstest"
	"livedrops/payments"
)

var secret = []byte("test-webhook-secret-0123456789")

type hook struct {
	*orderstest.World
	svc  *orders.Service
	gate *orders.Gate
	h    *payments.Webhook
	now  time.Time
}

func newHook(t *testing.T) *hook {
	w := orderstest.New(t)
	gate := orders.NewGate(w.Redis, w.Prefix)
	t.Cleanup(func() { gate.Close() })
	svc := orders.New(w.DB, gate, payments.NewSimulated(), w.Redis, w.Config)
	h := payments.WebhookHandler(secret, svc, nil)
	hk := &hook{World: w, svc: svc, gate: gate, h: h, now: time.Now()}
	h.Now = func() time.Time { return hk.now }
	return hk
}

// send posts body with the signature header sig (none when empty).
func (hk *hook) send(t *testing.T, body []byte, sig string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/internal/payments/webhook", strings.NewReader(string(body)))
	if sig != "" {
		req.Header.Set(payments.SignatureHeader, sig)
	}
	rec := httptest.NewRecorder()
	hk.h.ServeHTTP(rec, req)
	var out struct{ Status string }
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out.Status
}

func (hk *hook) signed(t *testing.T, ev payments.Event) (int, string) {
	t.Helper()
	body, _ := json.Marshal(ev)
	return hk.send(t, body, payments.Sign(secret, hk.now, body))
}

func (hk *hook) order(t *testing.T, handle string, dropID int64) *domain.Order {
	t.Helper()
	buyer := hk.User(t, handle)
	o, err := hk.svc.PlaceOrder(context.Background(), buyer.ID, dropID, 1, "k")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (hk *hook) status(t *testing.T, orderID int64) domain.OrderStatus {
	t.Helper()
	os, err := hk.svc.OrdersByIDs(context.Background(), []int64{orderID})
	if err != nil || len(os) != 1 {
		t.Fatalf("read order %d: %v", orderID, err)
	}
	return os[0].Status
}

func TestWebhookRefusesUnsignedForgedAndStale(t *testing.T) {
	hk := newHook(t)
	d := hk.LiveDrop(t, 5, 1)
	o := hk.order(t, "buyer", d.ID)
	body, _ := json.Marshal(payments.Event{ID: "evt_1", Type: payments.EventSucceeded, ProviderRef: "ref_1", OrderID: o.ID})
	good := payments.Sign(secret, hk.now, body)

	for name, sig := range map[string]string{
		"missing":      "",
		"malformed":    "garbage",
		"no v1":        "t=" + strings.Split(strings.TrimPrefix(good, "t="), ",")[0],
		"not hex":      strings.Split(good, ",")[0] + ",v1=zz",
		"forged":       payments.Sign([]byte("another-secret-entirely"), hk.now, body),
		"stale":        payments.Sign(secret, hk.now.Add(-6*time.Minute), body),
		"from future":  payments.Sign(secret, hk.now.Add(6*time.Minute), body),
		"other body":   payments.Sign(secret, hk.now, []byte(`{"id":"evt_2"}`)),
		"other t same": strings.Replace(good, "t=", "t=1", 1),
	} {
		if code, _ := hk.send(t, body, sig); code != http.StatusUnauthorized {
			t.Fatalf("%s signature: status %d, want 401", name, code)
		}
	}
	if got := hk.status(t, o.ID); got != domain.OrderPendingPayment {
		t.Fatalf("a refused webhook changed the order: %s", got)
	}
	// Several v1 values are accepted while secrets rotate.
	rotated := good + ",v1=" + strings.Repeat("ab", 32)
	if code, msg := hk.send(t, body, rotated); code != http.StatusOK || msg != "applied" {
		t.Fatalf("rotated signature: %d %s", code, msg)
	}
}

func TestWebhookAppliesOnceAndReplaysChangeNothing(t *testing.T) {
	hk := newHook(t)
	d := hk.LiveDrop(t, 5, 1)
	if err := hk.gate.Load(context.Background(), d.ID, 5); err != nil {
		t.Fatal(err)
	}
	paid := hk.order(t, "payer", d.ID)
	failed := hk.order(t, "decliner", d.ID)

	ok := payments.Event{ID: "evt_ok", Type: payments.EventSucceeded, ProviderRef: "ch_ok", OrderID: paid.ID}
	if code, msg := hk.signed(t, ok); code != http.StatusOK || msg != "applied" {
		t.Fatalf("first delivery: %d %s", code, msg)
	}
	if got := hk.status(t, paid.ID); got != domain.OrderConfirmed {
		t.Fatalf("order %s after payment.succeeded", got)
	}
	for i := 0; i < 3; i++ {
		if code, msg := hk.signed(t, ok); code != http.StatusOK || msg != "duplicate" {
			t.Fatalf("replay: %d %s", code, msg)
		}
	}
	// The provider sending the same result under a new event id changes nothing either.
	again := ok
	again.ID = "evt_ok_resent"
	if code, _ := hk.signed(t, again); code != http.StatusOK {
		t.Fatalf("resent result: %d", code)
	}
	key := orderstest.DropKey(d.ID)
	if n := hk.CountEvents(t, key, domain.EventOrderConfirmed); n != 1 {
		t.Fatalf("%d OrderConfirmed events", n)
	}
	ps, err := hk.svc.PaymentsByOrderIDs(context.Background(), []int64{paid.ID})
	if err != nil || len(ps) != 1 || ps[0].ProviderRef != "ch_ok" || ps[0].Status != domain.PaymentStatusSucceeded || ps[0].AmountCents != paid.TotalCents {
		t.Fatalf("payments %+v %v", ps, err)
	}

	fail := payments.Event{ID: "evt_fail", Type: payments.EventFailed, ProviderRef: "ch_fail", OrderID: failed.ID}
	for i := 0; i < 3; i++ {
		if code, _ := hk.signed(t, fail); code != http.StatusOK {
			t.Fatalf("payment.failed delivery %d: %d", i, code)
		}
	}
	if got := hk.status(t, failed.ID); got != domain.OrderCancelled {
		t.Fatalf("order %s after payment.failed", got)
	}
	st := hk.CheckBalance(t, d.ID)
	if st.Sold != 1 || st.Reserved != 0 || st.Available != 4 {
		t.Fatalf("stock %+v", st)
	}
	if n, _, _ := hk.gate.Counter(context.Background(), d.ID); n != 4 {
		t.Fatalf("gate counter %d, want 4", n)
	}
	if n := hk.CountEvents(t, key, domain.EventOrderCancelled); n != 1 {
		t.Fatalf("%d OrderCancelled events", n)
	}
}

func TestWebhookAfterSynchronousPayment(t *testing.T) {
	hk := newHook(t)
	d := hk.LiveDrop(t, 5, 1)
	buyer := hk.User(t, "buyer")
	o, err := hk.svc.PlaceOrder(context.Background(), buyer.ID, d.ID, 1, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hk.svc.PayOrder(context.Background(), buyer.ID, o.ID, payments.MethodSucceeds); err != nil {
		t.Fatal(err)
	}
	ev := payments.Event{ID: "evt_sync", Type: payments.EventSucceeded, ProviderRef: payments.SimulatedRef(o.ID), OrderID: o.ID}
	if code, _ := hk.signed(t, ev); code != http.StatusOK {
		t.Fatalf("webhook after pay: %d", code)
	}
	if n := hk.CountEvents(t, orderstest.DropKey(d.ID), domain.EventOrderConfirmed); n != 1 {
		t.Fatalf("%d OrderConfirmed events", n)
	}
	// A webhook that contradicts the recorded result cannot flip it.
	contra := payments.Event{ID: "evt_contra", Type: payments.EventFailed, ProviderRef: payments.SimulatedRef(o.ID), OrderID: o.ID}
	if code, _ := hk.signed(t, contra); code != http.StatusOK {
		t.Fatalf("contradicting webhook: %d", code)
	}
	if got := hk.status(t, o.ID); got != domain.OrderConfirmed {
		t.Fatalf("order %s", got)
	}
	hk.CheckBalance(t, d.ID)
}

func TestWebhookRejectsBadEvents(t *testing.T) {
	hk := newHook(t)
	d := hk.LiveDrop(t, 5, 1)
	o := hk.order(t, "buyer", d.ID)
	other := hk.order(t, "other", d.ID)
	for name, tc := range map[string]struct {
		ev   payments.Event
		code int
	}{
		"no id":        {payments.Event{Type: payments.EventSucceeded, ProviderRef: "r", OrderID: o.ID}, 400},
		"unknown type": {payments.Event{ID: "e1", Type: "payment.refunded", ProviderRef: "r", OrderID: o.ID}, 400},
		"no ref":       {payments.Event{ID: "e2", Type: payments.EventSucceeded, OrderID: o.ID}, 400},
		"no order":     {payments.Event{ID: "e3", Type: payments.EventSucceeded, ProviderRef: "r"}, 400},
		"unknown":      {payments.Event{ID: "e4", Type: payments.EventSucceeded, ProviderRef: "r4", OrderID: 987654}, 404},
	} {
		if code, _ := hk.signed(t, tc.ev); code != tc.code {
			t.Fatalf("%s: status %d, want %d", name, code, tc.code)
		}
	}
	// A reference already used for one order cannot pay another.
	if code, _ := hk.signed(t, payments.Event{ID: "e5", Type: payments.EventSucceeded, ProviderRef: "shared", OrderID: o.ID}); code != 200 {
		t.Fatalf("first use of a reference: %d", code)
	}
	if code, _ := hk.signed(t, payments.Event{ID: "e6", Type: payments.EventSucceeded, ProviderRef: "shared", OrderID: other.ID}); code != 422 {
		t.Fatalf("reference reused for another order: %d", code)
	}
	if got := hk.status(t, other.ID); got != domain.OrderPendingPayment {
		t.Fatalf("other order %s", got)
	}
	body := []byte("not json")
	if code, _ := hk.send(t, body, payments.Sign(secret, hk.now, body)); code != 400 {
		t.Fatalf("not json: %d", code)
	}
	rec := httptest.NewRecorder()
	hk.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/internal/payments/webhook", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", rec.Code)
	}
}

func TestSimulatedProvider(t *testing.T) {
	p := payments.NewSimulated()
	ctx := context.Background()
	ref, st, err := p.Charge(ctx, 7, 100, "EUR", payments.MethodSucceeds)
	if err != nil || st != domain.PaymentStatusSucceeded || ref != payments.SimulatedRef(7) {
		t.Fatalf("visa: %s %s %v", ref, st, err)
	}
	if _, st, err := p.Charge(ctx, 7, 100, "EUR", payments.MethodDeclines); err != nil || st != domain.PaymentStatusDeclined {
		t.Fatalf("declined: %s %v", st, err)
	}
	_, _, err = p.Charge(ctx, 7, 100, "EUR", "pm_card_mastercard")
	if domain.ErrorCode(err) != domain.BadUserInput {
		t.Fatalf("unknown method: %v", err)
	}
}
