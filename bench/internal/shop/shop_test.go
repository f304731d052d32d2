package shop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/measure"
	"livedrops/bench/internal/sandbox"
)

// PlaceOrder sends what the schema asks for and sorts every kind of answer.
func TestPlaceOrderClassifies(t *testing.T) {
	answers := map[string]string{
		"ordered":   `{"data":{"placeOrder":{"id":"T3JkZXI6MQ","status":"PENDING_PAYMENT"}}}`,
		"confirmed": `{"data":{"placeOrder":{"id":"T3JkZXI6MQ","status":"CONFIRMED"}}}`,
		"no id":     `{"data":{"placeOrder":{"id":"","status":"PENDING_PAYMENT"}}}`,
		"sold out":  `{"errors":[{"message":"sold out","extensions":{"code":"SOLD_OUT"}}],"data":null}`,
		"limited":   `{"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED"}}],"data":null}`,
		"garbage":   `not json`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Variables struct {
				Input struct {
					DropID         string `json:"dropId"`
					Quantity       int    `json:"quantity"`
					IdempotencyKey string `json:"idempotencyKey"`
				} `json:"input"`
			} `json:"variables"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		in := req.Variables.Input
		if r.Header.Get("Authorization") != "Bearer tok" || in.DropID != "RHJvcDox" || in.Quantity != 1 {
			t.Errorf("request: auth %q, input %+v", r.Header.Get("Authorization"), in)
		}
		w.Write([]byte(answers[in.IdempotencyKey]))
	}))
	defer srv.Close()
	c := gql.New(srv.URL, 2)
	defer c.Close()
	buyer := sandbox.Buyer{ID: 7, Handle: "buyer_7", Token: "tok"}

	tests := []struct {
		key     string
		outcome measure.Outcome
		code    string
		orderID string
	}{
		{"ordered", measure.Ordered, "", "T3JkZXI6MQ"},
		{"confirmed", measure.Failed, "order answered CONFIRMED", ""},
		{"no id", measure.Failed, "answer without an order id", ""},
		{"sold out", measure.SoldOut, "", ""},
		{"limited", measure.Failed, "RATE_LIMITED", ""},
	}
	for _, tt := range tests {
		a := PlaceOrder(context.Background(), c, buyer, 3, "RHJvcDox", tt.key, true)
		if a.Outcome != tt.outcome || a.Code != tt.code || a.OrderID != tt.orderID || a.Buyer != 3 || !a.Retry || a.Done.Before(a.Sent) {
			t.Errorf("%s: answer %+v", tt.key, a)
		}
	}
	if a := PlaceOrder(context.Background(), c, buyer, 3, "RHJvcDox", "garbage", false); a.Outcome != measure.Failed || len(a.Code) < 10 || a.Code[:10] != "transport:" {
		t.Errorf("garbage: answer %+v", a)
	}
}
