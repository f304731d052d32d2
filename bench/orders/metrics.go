package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// watchedMetrics are the server's counters that explain a round: what the
// admission gate answered, what placeOrder answered, Redis failures, and
// the rows retention pruned meanwhile.
var watchedMetrics = []string{"livedrops_gate_total", "livedrops_orders_total", "livedrops_gate_redis_errors_total",
	"livedrops_pruned_rows_total"}

// counters maps a series ("name{labels}") to its value.
type counters map[string]float64

// scrapeCounters reads the watched counters from the server's /metrics; nil
// when they cannot be read (the report then leaves them out).
func scrapeCounters(ctx context.Context, baseURL string) counters {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return parseCounters(resp.Body)
}

// parseCounters reads the watched series from the Prometheus text format.
func parseCounters(r io.Reader) counters {
	out := counters{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, value := line[:i], line[i+1:]
		name, _, _ := strings.Cut(series, "{")
		for _, w := range watchedMetrics {
			if name == w {
				if v, err := strconv.ParseFloat(value, 64); err == nil {
					out[series] = v
				}
			}
		}
	}
	return out
}

// delta describes what the counters did between two scrapes, one part per
// metric: "gate admitted=5400 sold_out=16000".
func (c counters) delta(before counters) string {
	if c == nil || before == nil {
		return ""
	}
	byMetric := map[string][]string{}
	series := make([]string, 0, len(c))
	for s := range c {
		series = append(series, s)
	}
	sort.Strings(series)
	for _, s := range series {
		d := c[s] - before[s]
		if d == 0 {
			continue
		}
		name, labels, _ := strings.Cut(s, "{")
		label := strings.TrimSuffix(labels, "}")
		if _, v, ok := strings.Cut(label, "="); ok {
			label = strings.Trim(v, `"`)
		}
		byMetric[name] = append(byMetric[name], fmt.Sprintf("%s=%.0f", label, d))
	}
	short := map[string]string{
		"livedrops_gate_total":              "gate",
		"livedrops_orders_total":            "placeOrder",
		"livedrops_gate_redis_errors_total": "Redis errors",
		"livedrops_pruned_rows_total":       "pruned",
	}
	var parts []string
	for _, m := range watchedMetrics {
		if len(byMetric[m]) > 0 {
			parts = append(parts, short[m]+" "+strings.Join(byMetric[m], " "))
		}
	}
	return strings.Join(parts, "; ")
}
