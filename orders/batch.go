package orders

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"livedrops/domain"
	"livedrops/internal/batch"
	"livedrops/store"
)

// Orders of one drop that reach PostgreSQL at the same moment are placed
// together (internal/batch): while one transaction of a drop runs, the orders
// that arrive wait, and the next transaction takes them all (up to
// maxBatch). A quiet drop's order goes alone and waits for nobody; a
// stampede's orders share the hot inventory row's lock, a commit and a
// handful of statements per transaction instead of paying each for itself.
const (
	// maxBatch bounds the orders of one transaction.
	maxBatch = 128
	// batchTimeout bounds one batch's transaction. It is not tied to any
	// order's request: a buyer who hangs up does not undo the others' orders.
	batchTimeout = 15 * time.Second
)

var (
	batchSizes = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "livedrops_order_batch_size",
		Help:    "Orders placed together in one PostgreSQL transaction.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	})
	batchRetries = promauto.NewCounter(prometheus.CounterOpts{
		Name: "livedrops_order_batch_retries_total",
		Help: "Order transactions run again after a serialization failure, a deadlock or a lost connection.",
	})
)

// pending is one order waiting for its batch, with the rule it is judged by.
type pending struct {
	in    store.NewOrder
	admit func(store.OrderSale) error
}

// newBatcher returns the runner placing each drop's orders, one batch of a
// drop at a time. Its calls wait for their batch whatever their request
// does: the order may be placed by then, and the caller must know.
func newBatcher(db *store.DB) *batch.Runner[int64, pending, store.PlaceResult] {
	return batch.New(maxBatch, func(dropID int64, ps []pending) ([]store.PlaceResult, error) {
		batchSizes.Observe(float64(len(ps)))
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		defer cancel()
		return placeBatch(ctx, db, dropID, ps), nil
	})
}

// placeBatch places ps in one transaction. A transaction that fails for one
// order's sake (PostgreSQL refused a row) does not fail the others: the batch
// is split in two, placed half after half (arrival order kept), until the
// order that fails is alone with its error.
func placeBatch(ctx context.Context, db *store.DB, dropID int64, ps []pending) []store.PlaceResult {
	res, err := placeRetrying(ctx, db, dropID, ps)
	if err == nil {
		return res
	}
	var de *domain.Error
	if len(ps) == 1 || ctx.Err() != nil || store.Transient(err) || errors.As(err, &de) {
		// Alone, out of time, or a failure that is no order's own (PostgreSQL
		// unreachable, or an answer about the drop): every order gets it.
		res = make([]store.PlaceResult, len(ps))
		for i := range res {
			res[i] = store.PlaceResult{Err: err, Available: -1}
		}
		return res
	}
	half := len(ps) / 2
	return append(placeBatch(ctx, db, dropID, ps[:half]), placeBatch(ctx, db, dropID, ps[half:])...)
}

// Bounds of the retries of a transaction that failed through no fault of
// its orders (store.Transient). A retry is safe even after a connection lost
// at commit: an order whose key PostgreSQL holds is answered as it is.
const (
	placeAttempts = 3
	retryPause    = 20 * time.Millisecond
)

// placeRetrying runs store.PlaceOrders for ps, again after a transient failure.
func placeRetrying(ctx context.Context, db *store.DB, dropID int64, ps []pending) ([]store.PlaceResult, error) {
	ins := make([]store.NewOrder, len(ps))
	for i, p := range ps {
		ins[i] = p.in
	}
	admit := func(i int, s store.OrderSale) error { return ps[i].admit(s) }
	for attempt := 1; ; attempt++ {
		res, err := db.PlaceOrders(ctx, dropID, ins, admit)
		if err == nil || attempt == placeAttempts || !store.Transient(err) {
			return res, err
		}
		batchRetries.Inc()
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(attempt) * retryPause):
		}
	}
}
