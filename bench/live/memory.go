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
)

// memory is a server's memory at one moment.
type memory struct {
	// RSS is the process's resident set (VmRSS), bytes.
	RSS int64
	// HeapInuse and StackInuse are the Go runtime's own figures, from the
	// server's /metrics (go_memstats_heap_inuse_bytes, ..._stack_inuse_bytes).
	HeapInuse, StackInuse int64
	// Goroutines is go_goroutines.
	Goroutines int64
}

// Go is the memory the Go runtime holds for live objects and stacks.
func (m memory) Go() int64 { return m.HeapInuse + m.StackInuse }

// readMemory samples the server process pid and its metrics at baseURL.
func readMemory(ctx context.Context, pid int, baseURL string) (memory, error) {
	var m memory
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, fmt.Errorf("read the server's memory: %w", err)
	}
	if m.RSS, err = vmRSS(status); err != nil {
		return m, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return m, fmt.Errorf("read the server's metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, fmt.Errorf("read the server's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("read the server's metrics: HTTP %d: %v", resp.StatusCode, err)
	}
	gauges := promGauges(body, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines")
	m.HeapInuse, m.StackInuse, m.Goroutines = int64(gauges[0]), int64(gauges[1]), int64(gauges[2])
	if m.HeapInuse == 0 {
		return m, fmt.Errorf("the server's metrics have no go_memstats_heap_inuse_bytes")
	}
	return m, nil
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
