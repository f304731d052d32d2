package orders

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

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

var batchSizes = promauto.NewHistogram(prometheus.HistogramOpts{
	Name:    "livedrops_order_batch_size",
	Help:    "Orders placed together in one PostgreSQL transaction.",
	Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
})

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
		ins := make([]store.NewOrder, len(ps))
		for i, p := range ps {
			ins[i] = p.in
		}
		return db.PlaceOrders(ctx, dropID, ins, func(i int, s store.OrderSale) error { return ps[i].admit(s) })
	})
}
