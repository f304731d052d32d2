package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/measure"
)

// load sends one shape's request from one worker per connection, each
// sending its next request as soon as its last is answered.
type load struct {
	conns []*gql.Conn
	body  []byte
	// want is the answer every request must get, byte for byte.
	want []byte
}

// window is what one stretch of load got.
type window struct {
	Reads   int
	Elapsed time.Duration
	Latency measure.Summary
	// Failures counts answers that were not want, by cause.
	Failures map[string]int
}

func openLoad(ctx context.Context, url string, conns int, body, want []byte) (*load, error) {
	cs, err := gql.DialAll(ctx, url, conns)
	if err != nil {
		return nil, err
	}
	return &load{conns: cs, body: body, want: want}, nil
}

func (l *load) Close() { gql.CloseAll(l.conns) }

// run sends requests for d from every connection and tallies the answers;
// the window ends with the last answer.
func (l *load) run(ctx context.Context, d time.Duration) window {
	start := time.Now()
	deadline := start.Add(d)
	type worker struct {
		lat      []time.Duration
		last     time.Time
		failures map[string]int
	}
	ws := make([]worker, len(l.conns))
	var wg sync.WaitGroup
	for i, c := range l.conns {
		wg.Go(func() {
			w := worker{lat: make([]time.Duration, 0, 4096), failures: map[string]int{}}
			for ctx.Err() == nil {
				sent := time.Now()
				if !sent.Before(deadline) {
					break
				}
				status, raw, err := c.Post(ctx, "", l.body)
				w.last = time.Now()
				if why := judge(status, raw, err, l.want); why != "" {
					w.failures[why]++
					continue
				}
				w.lat = append(w.lat, w.last.Sub(sent))
			}
			ws[i] = w
		})
	}
	wg.Wait()
	out := window{Failures: map[string]int{}}
	var all []time.Duration
	end := start
	for _, w := range ws {
		all = append(all, w.lat...)
		for k, v := range w.failures {
			out.Failures[k] += v
		}
		if w.last.After(end) {
			end = w.last
		}
	}
	out.Reads = len(all)
	out.Elapsed = end.Sub(start)
	out.Latency = measure.Summarize(all)
	return out
}

// judge says why an answer is not the expected one, "" when it is.
func judge(status int, raw []byte, err error, want []byte) string {
	switch {
	case err != nil:
		return "transport: " + err.Error()
	case status != 200:
		return fmt.Sprintf("HTTP %d", status)
	case bytes.Equal(raw, want):
		return ""
	case bytes.Contains(raw, []byte(`"errors"`)):
		return fmt.Sprintf("GraphQL errors: %.120s", raw)
	default:
		return "an answer other than the expected bytes"
	}
}

// perSecond is the window's reads per second.
func (w window) perSecond() float64 { return measure.PerSecond(w.Reads, w.Elapsed) }
