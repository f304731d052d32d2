package orders

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"livedrops/store"
)

// Orders of one drop that reach PostgreSQL at the same moment are placed
// together: while one transaction of a drop runs, the orders that arrive
// wait, and the next transaction takes them all (up to maxBatch). A quiet
// drop's order goes alone and waits for nobody; a stampede's orders share the
// hot inventory row's lock, a commit and a handful of statements per
// transaction instead of paying each for itself.
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

// batcher groups each drop's orders into transactions, one at a time per drop.
type batcher struct {
	db     *store.DB
	mu     sync.Mutex
	queues map[int64][]*pending // drop → orders waiting; present while the drop's batches run
}

// pending is one order waiting for its batch.
type pending struct {
	in    store.NewOrder
	admit func(store.OrderSale) error
	done  chan store.PlaceResult
}

func newBatcher(db *store.DB) *batcher {
	return &batcher{db: db, queues: make(map[int64][]*pending)}
}

// place places the order with the next batch of its drop and returns its
// result. It waits for that batch whatever ctx does: the order may be placed
// by then, and the caller must know what became of it.
func (b *batcher) place(in store.NewOrder, admit func(store.OrderSale) error) store.PlaceResult {
	p := &pending{in: in, admit: admit, done: make(chan store.PlaceResult, 1)}
	b.mu.Lock()
	q, running := b.queues[in.DropID]
	b.queues[in.DropID] = append(q, p)
	b.mu.Unlock()
	if !running {
		go b.run(in.DropID)
	}
	return <-p.done
}

// run places the drop's waiting orders, batch after batch, until none wait.
func (b *batcher) run(dropID int64) {
	for {
		b.mu.Lock()
		q := b.queues[dropID]
		if len(q) == 0 {
			delete(b.queues, dropID)
			b.mu.Unlock()
			return
		}
		n := min(len(q), maxBatch)
		batch := q[:n:n]
		b.queues[dropID] = q[n:]
		b.mu.Unlock()
		b.placeBatch(dropID, batch)
	}
}

// placeBatch places one batch and answers each of its orders. The batch's
// transaction fails as a whole only when PostgreSQL does (every order's own
// refusal is its answer alone), so its error is every order's answer.
func (b *batcher) placeBatch(dropID int64, batch []*pending) {
	batchSizes.Observe(float64(len(batch)))
	defer func() {
		if r := recover(); r != nil { // answer every order still waiting, and keep the process
			err := fmt.Errorf("orders: batch of drop #%d: panic: %v", dropID, r)
			slog.Error(err.Error(), "stack", string(debug.Stack()))
			for _, p := range batch {
				select {
				case p.done <- store.PlaceResult{Err: err, Available: -1}:
				default: // answered already
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	ins := make([]store.NewOrder, len(batch))
	for i, p := range batch {
		ins[i] = p.in
	}
	res, err := b.db.PlaceOrders(ctx, dropID, ins, func(i int, s store.OrderSale) error { return batch[i].admit(s) })
	for i, p := range batch {
		if err != nil {
			p.done <- store.PlaceResult{Err: err, Available: -1}
			continue
		}
		p.done <- res[i]
	}
}
