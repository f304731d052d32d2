package stampede

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/measure"
	"livedrops/bench/internal/sandbox"
)

func TestPlan(t *testing.T) {
	const buyers, pct = 1000, 10
	jobs := Plan(buyers, pct, rand.New(rand.NewPCG(1, 2)))
	if len(jobs) != buyers+buyers*pct/100/2 {
		t.Fatalf("%d jobs, want every buyer once plus one twin copy per twin buyer (%d)", len(jobs), buyers+50)
	}
	seen := map[int]int{}
	kinds := map[Retry]int{}
	for i, j := range jobs {
		seen[j.Buyer]++
		if !j.Second {
			kinds[j.Kind]++
		}
		if j.Second && (i == 0 || jobs[i-1].Buyer != j.Buyer || jobs[i-1].Kind != Twin) {
			t.Errorf("twin copy of buyer %d at %d is not right after its first request", j.Buyer, i)
		}
	}
	if len(seen) != buyers {
		t.Errorf("%d distinct buyers, want %d", len(seen), buyers)
	}
	if kinds[Twin] != 50 || kinds[After] != 50 || kinds[Once] != 900 {
		t.Errorf("kinds = %v, want 50 twins, 50 after, 900 once", kinds)
	}
	// The retrying buyers are spread through the queue, not bunched at its head.
	firstRetry, lastRetry := -1, -1
	for i, j := range jobs {
		if j.Kind != Once {
			if firstRetry < 0 {
				firstRetry = i
			}
			lastRetry = i
		}
	}
	if firstRetry > len(jobs)/4 || lastRetry < len(jobs)*3/4 {
		t.Errorf("retries span jobs %d..%d of %d", firstRetry, lastRetry, len(jobs))
	}
	if n := len(Plan(10, 0, rand.New(rand.NewPCG(1, 2)))); n != 10 {
		t.Errorf("no retries: %d jobs, want 10", n)
	}
}

func TestEach(t *testing.T) {
	jobs := Each(3)
	if len(jobs) != 3 {
		t.Fatalf("%d jobs, want 3", len(jobs))
	}
	for i, j := range jobs {
		if j != (Job{Buyer: i}) {
			t.Errorf("job %d = %+v, want buyer %d once", i, j, i)
		}
	}
}

// Run sends every job's request, the After kind's twice, each with the
// buyer's own token and key, and returns an answer for each.
func TestRunSendsEveryJob(t *testing.T) {
	var mu sync.Mutex
	sent := map[string]int{} // key -> requests
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Variables struct {
				Input struct {
					DropID         string `json:"dropId"`
					IdempotencyKey string `json:"idempotencyKey"`
				} `json:"input"`
			} `json:"variables"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		in := req.Variables.Input
		if r.Header.Get("Authorization") != "Bearer tok-"+in.IdempotencyKey[len("r1-"):] || in.DropID != "RHJvcDox" {
			t.Errorf("request: auth %q, input %+v", r.Header.Get("Authorization"), in)
		}
		mu.Lock()
		sent[in.IdempotencyKey]++
		mu.Unlock()
		w.Write([]byte(`{"data":{"placeOrder":{"id":"T3JkZXI6MQ","status":"PENDING_PAYMENT"}}}`))
	}))
	defer srv.Close()
	conns, err := gql.DialAll(context.Background(), srv.URL, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer gql.CloseAll(conns)
	buyers := make([]sandbox.Buyer, 5)
	for i := range buyers {
		h := "buyer_" + strconv.Itoa(i)
		buyers[i] = sandbox.Buyer{ID: int64(i + 1), Handle: h, Token: "tok-" + h}
	}
	jobs := []Job{{Buyer: 0}, {Buyer: 1, Kind: Twin}, {Buyer: 1, Kind: Twin, Second: true}, {Buyer: 2, Kind: After}, {Buyer: 3}, {Buyer: 4}}

	answers := Run(context.Background(), conns, buyers, "RHJvcDox", "r1-", jobs)
	if len(answers) != 7 {
		t.Fatalf("%d answers, want 7 (one a job, two for the After job)", len(answers))
	}
	perBuyer := map[int]int{}
	retries := 0
	for _, a := range answers {
		if a.Outcome != measure.Ordered {
			t.Errorf("answer %+v", a)
		}
		perBuyer[a.Buyer]++
		if a.Retry {
			retries++
		}
	}
	if perBuyer[0] != 1 || perBuyer[1] != 2 || perBuyer[2] != 2 || perBuyer[3] != 1 || perBuyer[4] != 1 || retries != 2 {
		t.Errorf("answers per buyer %v, %d retries; want 1 2 2 1 1 and 2", perBuyer, retries)
	}
	if sent["r1-buyer_1"] != 2 || sent["r1-buyer_2"] != 2 || sent["r1-buyer_0"] != 1 || len(sent) != 5 {
		t.Errorf("requests by key: %v", sent)
	}

	// A cancelled context sends nothing more.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := Run(ctx, conns[:2], buyers, "RHJvcDox", "r2-", Each(len(buyers))); len(got) != 0 {
		t.Errorf("%d answers after cancel, want 0", len(got))
	}
}
