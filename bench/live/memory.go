package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// memory is a server's memory at one moment.
type memory struct {
	// RSS is the process's resident set (VmRSS), bytes.
	RSS int64
	// HeapAlloc, HeapInuse and StackInuse are the Go runtime's figures, from
	// the server's /metrics (go_memstats_heap_alloc_bytes, heap_inuse_bytes,
	// stack_inuse_bytes), read after a collection: HeapAlloc is then the live
	// objects, HeapInuse also the free room in the spans they sit in.
	HeapAlloc, HeapInuse, StackInuse int64
	// Goroutines is go_goroutines.
	Goroutines int64
}

// Live is the memory of live objects and goroutine stacks.
func (m memory) Live() int64 { return m.HeapAlloc + m.StackInuse }

// readMemory samples the server process pid, then makes it collect its
// garbage and reads its Go memory from its metrics at internalURL (its
// operators' listener; queries go to publicURL): the heap
// then holds what the server keeps, not what it has yet to free, so two
// readings compare. The resident set is read first, before the collection's
// own allocations.
func readMemory(ctx context.Context, pid int, publicURL, internalURL string) (memory, error) {
	var m memory
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, fmt.Errorf("read the server's memory: %w", err)
	}
	if m.RSS, err = vmRSS(status); err != nil {
		return m, err
	}
	if err := collectGarbage(ctx, publicURL, internalURL); err != nil {
		return m, err
	}
	gauges, err := scrape(ctx, internalURL, "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
		"go_memstats_stack_inuse_bytes", "go_goroutines")
	if err != nil {
		return m, err
	}
	m.HeapAlloc, m.HeapInuse, m.StackInuse, m.Goroutines = int64(gauges[0]), int64(gauges[1]), int64(gauges[2]), int64(gauges[3])
	if m.HeapAlloc == 0 || m.HeapInuse == 0 || m.StackInuse == 0 {
		return m, fmt.Errorf("the server's metrics lack go_memstats_heap_alloc_bytes, heap_inuse_bytes or stack_inuse_bytes")
	}
	return m, nil
}

// scrape reads unlabelled or fully labelled series from the server's /metrics.
func scrape(ctx context.Context, baseURL string, series ...string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("read the server's metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the server's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the server's metrics: HTTP %d: %v", resp.StatusCode, err)
	}
	return promGauges(body, series...), nil
}

// collectGarbage makes the server finish a garbage collection and sweep.
// No endpoint asks for one, so it sends request bodies the server reads
// whole and refuses (the query is over the parser's token limit): the
// allocation the collector must follow. Objects allocated while a
// collection marks survive it, so once the heap is past 60% of the
// collector's goal (a collection may start from there on) the bodies are
// small and paced, and it stops at the first collection.
func collectGarbage(ctx context.Context, publicURL, internalURL string) error {
	const (
		cycles = "go_gc_duration_seconds_count"
		alloc  = "go_memstats_heap_alloc_bytes"
		goal   = "go_memstats_next_gc_bytes"
	)
	before, err := scrape(ctx, internalURL, cycles)
	if err != nil {
		return err
	}
	large := refusedQuery(256 << 10) // 512 KiB
	small := refusedQuery(32 << 10)  // 64 KiB
	for range 20000 {
		g, err := scrape(ctx, internalURL, cycles, alloc, goal)
		if err != nil {
			return err
		}
		if g[0] > before[0] {
			return awaitSweep(ctx, internalURL)
		}
		body := large
		if g[1] > 0.6*g[2] {
			body = small
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(nearGoalPause):
			}
		}
		if err := post(ctx, publicURL+"/query", body); err != nil {
			return fmt.Errorf("make the server collect garbage: %w", err)
		}
	}
	return fmt.Errorf("the server ran no garbage collection after 20000 large requests")
}

// nearGoalPause paces the small bodies, some 10 MB/s of garbage with what
// the server allocates to read each and to answer the scrape.
const nearGoalPause = 10 * time.Millisecond

// refusedQuery is a GraphQL request of n tokens, more than the server parses.
func refusedQuery(n int) []byte {
	return []byte(`{"query":"{` + strings.Repeat(" a", n) + `}"}`)
}

func post(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// awaitSweep waits until the heap in use stops shrinking: a finished
// collection frees its garbage as its spans are swept, in the background.
func awaitSweep(ctx context.Context, baseURL string) error {
	last := -1.0
	for range 30 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		g, err := scrape(ctx, baseURL, "go_memstats_heap_inuse_bytes")
		if err != nil {
			return err
		}
		if last >= 0 && last-g[0] < last/200 {
			return nil
		}
		last = g[0]
	}
	return nil
}

// vmRSS reads VmRSS out of a /proc/<pid>/status file.
func vmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmRSS line in the process status")
}

// promGauges reads unlabelled samples from Prometheus text exposition, in
// the order of names; a missing one is 0.
func promGauges(text []byte, names ...string) []float64 {
	out := make([]float64, len(names))
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		// name value [timestamp]
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		for i, want := range names {
			if f[0] == want {
				if v, err := strconv.ParseFloat(f[1], 64); err == nil {
					out[i] = v
				}
			}
		}
	}
	return out
}
