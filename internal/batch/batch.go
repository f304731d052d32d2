// Package batch runs calls that arrive together as one: while a batch of a
// key runs, the calls of that key that arrive wait, and the next batch takes
// them all, up to a maximum. A lone call runs at once and waits for nobody;
// calls that come in a crowd share one round trip, one lock or one commit
// instead of paying each for its own.
package batch

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// Runner batches calls by key and runs one batch of a key at a time.
type Runner[K comparable, In, Out any] struct {
	max int
	run func(key K, ins []In) ([]Out, error)

	mu     sync.Mutex
	queues map[K][]*call[In, Out] // calls waiting, by key; a key is present while its batches run
}

type call[In, Out any] struct {
	in   In
	done chan result[Out]
}

type result[Out any] struct {
	out Out
	err error
}

// New returns a runner that passes run batches of up to most calls of one key,
// in the order they arrived. run returns one Out for each In, or an error for
// the batch as a whole, which every call of it gets; a run that panics is
// such an error, and the runner goes on.
func New[K comparable, In, Out any](most int, run func(key K, ins []In) ([]Out, error)) *Runner[K, In, Out] {
	return &Runner[K, In, Out]{max: max(most, 1), run: run, queues: make(map[K][]*call[In, Out])}
}

// Do runs in with the next batch of key and returns its result. It waits for
// that batch whatever happens to the caller meanwhile: the call may have had
// its effect, and the caller must know what became of it.
func (r *Runner[K, In, Out]) Do(key K, in In) (Out, error) {
	c := &call[In, Out]{in: in, done: make(chan result[Out], 1)}
	r.mu.Lock()
	q, running := r.queues[key]
	r.queues[key] = append(q, c)
	r.mu.Unlock()
	if !running {
		go r.drain(key)
	}
	res := <-c.done
	return res.out, res.err
}

// drain runs the key's waiting calls, batch after batch, until none wait.
func (r *Runner[K, In, Out]) drain(key K) {
	for {
		r.mu.Lock()
		q := r.queues[key]
		if len(q) == 0 {
			delete(r.queues, key)
			r.mu.Unlock()
			return
		}
		n := min(len(q), r.max)
		calls := q[:n:n]
		r.queues[key] = q[n:]
		r.mu.Unlock()
		r.runBatch(key, calls)
	}
}

// runBatch runs one batch and answers each of its calls.
func (r *Runner[K, In, Out]) runBatch(key K, calls []*call[In, Out]) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("batch of %v: panic: %v", key, p)
			slog.Error(err.Error(), "stack", string(debug.Stack()))
			for _, c := range calls {
				select {
				case c.done <- result[Out]{err: err}:
				default: // answered already
				}
			}
		}
	}()
	ins := make([]In, len(calls))
	for i, c := range calls {
		ins[i] = c.in
	}
	outs, err := r.run(key, ins)
	if err == nil && len(outs) != len(ins) {
		err = fmt.Errorf("batch of %v: %d answers to %d calls", key, len(outs), len(ins))
	}
	for i, c := range calls {
		if err != nil {
			c.done <- result[Out]{err: err}
			continue
		}
		c.done <- result[Out]{out: outs[i]}
	}
}
