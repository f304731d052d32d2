package batch_test

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"livedrops/internal/batch"
)

func TestCallsThatArriveTogetherShareBatches(t *testing.T) {
	var (
		mu      sync.Mutex
		batches [][]int
		release = make(chan struct{})
		started = make(chan struct{}, 1)
	)
	r := batch.New(4, func(key string, ins []int) ([]int, error) {
		mu.Lock()
		batches = append(batches, slices.Clone(ins))
		mu.Unlock()
		if ins[0] == 0 {
			started <- struct{}{}
			<-release // hold the first batch until the others wait
		}
		outs := make([]int, len(ins))
		for i, in := range ins {
			outs[i] = in * 10
		}
		return outs, nil
	})
	var wg sync.WaitGroup
	got := make([]int, 10)
	do := func(i int) {
		defer wg.Done()
		out, err := r.Do("k", i)
		if err != nil {
			t.Error(err)
		}
		got[i] = out
	}
	wg.Add(1)
	go do(0)
	<-started
	for i := 1; i < 10; i++ {
		wg.Add(1)
		go do(i)
	}
	for r.Waiting("k") < 9 { // every other call queued behind the first batch
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	for i, out := range got {
		if out != i*10 {
			t.Fatalf("call %d answered %d", i, out)
		}
	}
	if len(batches) != 4 || len(batches[0]) != 1 || len(batches[1]) != 4 || len(batches[2]) != 4 || len(batches[3]) != 1 {
		t.Fatalf("batches %v, want 1 alone, then the 9 that waited in batches of at most 4", batches)
	}
}

func TestKeysRunApart(t *testing.T) {
	var inFlight, most atomic.Int32
	block := make(chan struct{})
	r := batch.New(8, func(key int, ins []int) ([]int, error) {
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-block
		inFlight.Add(-1)
		return ins, nil
	})
	var wg sync.WaitGroup
	for k := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); r.Do(k, k) }()
	}
	for inFlight.Load() < 3 { // one batch of each key runs at once
		runtime.Gosched()
	}
	close(block)
	wg.Wait()
	if most.Load() != 3 {
		t.Fatalf("%d batches ran at once, want 3 (one per key)", most.Load())
	}
}

func TestBatchErrorsAndPanicsReachEveryCall(t *testing.T) {
	boom := errors.New("boom")
	r := batch.New(8, func(mode string, ins []int) ([]int, error) {
		switch mode {
		case "error":
			return nil, boom
		case "panic":
			panic("bad batch")
		case "short":
			return ins[:0], nil
		}
		return ins, nil
	})
	if _, err := r.Do("error", 1); !errors.Is(err, boom) {
		t.Fatalf("error batch: %v", err)
	}
	if _, err := r.Do("panic", 1); err == nil {
		t.Fatal("a batch that panicked answered no error")
	}
	if _, err := r.Do("short", 1); err == nil {
		t.Fatal("a batch with too few answers answered no error")
	}
	if out, err := r.Do("fine", 7); err != nil || out != 7 {
		t.Fatalf("after the failures: %d %v", out, err)
	}
}
