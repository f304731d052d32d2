package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"livedrops/bench/internal/measure"
)

// measurement is one shape measured against one target in one round.
type measurement struct {
	window
	// WarmupFailures are failed answers of the warm-up.
	WarmupFailures map[string]int
	CPUPerRead     time.Duration
	CPUOK          bool
	// StatementsPerRead is SQL statements the server sent per read.
	StatementsPerRead float64
	StatementsOK      bool
	// LoadCores is the load generator's CPU over the window, in cores.
	LoadCores float64
}

// shapeRound is one shape in one round: the two servers, the ceiling and
// the peer if any.
type shapeRound struct {
	Warm, Cold, Bare, Peer measurement
	HasPeer                bool
}

// statementsMetric is the server's count of SQL statements sent.
const statementsMetric = "livedrops_sql_statements_total"

// scrapeStatements reads statementsMetric from the server's /metrics; false
// when want is false or it cannot be read (the report then shows "-").
func scrapeStatements(ctx context.Context, baseURL string, want bool) (float64, bool) {
	if !want {
		return 0, false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	return parseStatements(resp.Body)
}

// parseStatements finds statementsMetric's value in the Prometheus text format.
func parseStatements(r io.Reader) (float64, bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || name != statementsMetric {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		return v, err == nil
	}
	return 0, false
}

// figures is the one-line description of a measurement.
func (m measurement) figures() string {
	cpu, stmts := "-", "-"
	if m.CPUOK {
		cpu = fmt.Sprintf("%.0f", micros(m.CPUPerRead))
	}
	if m.StatementsOK {
		stmts = fmt.Sprintf("%.2f", m.StatementsPerRead)
	}
	s := fmt.Sprintf("%7.0f reads/s  p50 %6.2f ms  p99 %6.2f ms  cpu %5s µs/read  sql %5s/read  (load %.2f cores)",
		m.perSecond(), measure.Millis(m.Latency.P50), measure.Millis(m.Latency.P99), cpu, stmts, m.LoadCores)
	if n := count(m.Failures) + count(m.WarmupFailures); n > 0 {
		s += fmt.Sprintf("  FAILED %d: %s", n, measure.Causes(merge(m.Failures, m.WarmupFailures), 3))
	}
	return s
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func (b *bench) printShapeRound(r int, s shape, sr shapeRound) {
	b.printf("round %d %-9s warm %s\n", r, s.Name, sr.Warm.figures())
	b.printf("                  cold %s\n", sr.Cold.figures())
	b.printf("                  bare %s\n", sr.Bare.figures())
	if sr.HasPeer {
		b.printf("                  peer %s\n", sr.Peer.figures())
	}
}

// stat is a figure's median over rounds and its range.
type stat struct{ Median, Min, Max float64 }

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := stat{Median: measure.Median(xs), Min: xs[0], Max: xs[0]}
	for _, x := range xs {
		s.Min, s.Max = min(s.Min, x), max(s.Max, x)
	}
	return s
}

// modeSummary is one shape and mode over every round.
type modeSummary struct {
	ReadsPerSecond, P50, P99, CPU, Statements stat
	CPUOK, StatementsOK                       bool
	// Ratio is the median over rounds of the round's reads/s over bare's.
	Ratio stat
}

func summarize(ms []measurement, bare []measurement) modeSummary {
	var rps, p50, p99, cpu, stmts, ratio []float64
	s := modeSummary{CPUOK: true, StatementsOK: true}
	for i, m := range ms {
		rps = append(rps, m.perSecond())
		p50 = append(p50, measure.Millis(m.Latency.P50))
		p99 = append(p99, measure.Millis(m.Latency.P99))
		cpu = append(cpu, micros(m.CPUPerRead))
		stmts = append(stmts, m.StatementsPerRead)
		s.CPUOK = s.CPUOK && m.CPUOK
		s.StatementsOK = s.StatementsOK && m.StatementsOK
		if i < len(bare) && bare[i].perSecond() > 0 {
			ratio = append(ratio, m.perSecond()/bare[i].perSecond())
		}
	}
	s.ReadsPerSecond, s.P50, s.P99, s.CPU, s.Statements, s.Ratio = statOf(rps), statOf(p50), statOf(p99), statOf(cpu), statOf(stmts), statOf(ratio)
	return s
}

// shapeSummary is one shape over every round, each mode.
type shapeSummary struct {
	Name                   string
	Warm, Cold, Bare, Peer modeSummary
	HasPeer                bool
}

// summaries reduces results (rows of rounds, one column per shape).
func summaries(shapes []shape, results [][]shapeRound) []shapeSummary {
	out := make([]shapeSummary, len(shapes))
	for i, s := range shapes {
		var warm, cold, bare, peer []measurement
		hasPeer := false
		for _, row := range results {
			warm, cold, bare, peer = append(warm, row[i].Warm), append(cold, row[i].Cold), append(bare, row[i].Bare), append(peer, row[i].Peer)
			hasPeer = row[i].HasPeer
		}
		out[i] = shapeSummary{Name: s.Name, Warm: summarize(warm, bare), Cold: summarize(cold, bare), Bare: summarize(bare, bare),
			Peer: summarize(peer, bare), HasPeer: hasPeer}
	}
	return out
}

// aggregate is what the last line says: warm mode, medians over rounds;
// the lowest ratio to bare of any shape, and the mean over shapes of CPU
// and statements per read.
type aggregate struct {
	Shapes                      int
	WorstRatio, CPU, Statements float64
}

func aggregateOf(ss []shapeSummary) aggregate {
	a := aggregate{Shapes: len(ss)}
	for i, s := range ss {
		if i == 0 || s.Warm.Ratio.Median < a.WorstRatio {
			a.WorstRatio = s.Warm.Ratio.Median
		}
		a.CPU += s.Warm.CPU.Median / float64(len(ss))
		a.Statements += s.Warm.Statements.Median / float64(len(ss))
	}
	return a
}

// lastLine is the machine-readable summary, always the output's last line.
func lastLine(a aggregate) string {
	return fmt.Sprintf("reads: shapes=%d worst_ratio_to_bare=%.3f cpu_us_per_read=%.0f statements_per_read=%.2f",
		a.Shapes, a.WorstRatio, a.CPU, a.Statements)
}

// summaryRows is the summary table, one row per shape and mode.
func summaryRows(ss []shapeSummary, rounds int) []string {
	rows := []string{
		fmt.Sprintf("median of %d rounds (reads/s spread = min-max over rounds)", rounds),
		fmt.Sprintf("%-9s %-4s %8s %15s %8s %8s %12s %9s %8s", "shape", "mode", "reads/s", "spread", "p50 ms", "p99 ms", "cpu µs/read", "sql/read", "x bare"),
	}
	for _, s := range ss {
		type row struct {
			mode string
			ms   modeSummary
		}
		modes := []row{{"warm", s.Warm}, {"cold", s.Cold}, {"bare", s.Bare}}
		if s.HasPeer {
			modes = append(modes, row{"peer", s.Peer})
		}
		for _, m := range modes {
			cpu, stmts, ratio := "-", "-", "-"
			if m.ms.CPUOK {
				cpu = fmt.Sprintf("%.0f", m.ms.CPU.Median)
			}
			if m.ms.StatementsOK && (m.mode == "warm" || m.mode == "cold") {
				stmts = fmt.Sprintf("%.2f", m.ms.Statements.Median)
			}
			if m.mode != "bare" {
				ratio = fmt.Sprintf("%.3f", m.ms.Ratio.Median)
			}
			spread := fmt.Sprintf("%.0f-%.0f", m.ms.ReadsPerSecond.Min, m.ms.ReadsPerSecond.Max)
			rows = append(rows, fmt.Sprintf("%-9s %-4s %8.0f %15s %8.2f %8.2f %12s %9s %8s", s.Name, m.mode,
				m.ms.ReadsPerSecond.Median, spread, m.ms.P50.Median, m.ms.P99.Median, cpu, stmts, ratio))
		}
	}
	return rows
}

func (b *bench) summary() {
	ss := summaries(b.shapes, b.results)
	for _, row := range summaryRows(ss, len(b.results)) {
		b.printf("%s\n", row)
	}
	b.printf("last line: warm mode, medians over rounds; worst_ratio_to_bare = lowest ratio of any shape,\n")
	b.printf("           cpu_us_per_read and statements_per_read = mean over the shapes\n")
	b.printf("%s\n", lastLine(aggregateOf(ss)))
}

// failures lists every failed answer of the run by where it happened.
func (b *bench) failures() []string {
	out := append([]string(nil), b.setupFailures...)
	for r, row := range b.results {
		for i, sr := range row {
			for _, m := range []struct {
				mode string
				m    measurement
			}{{"warm", sr.Warm}, {"cold", sr.Cold}, {"bare", sr.Bare}, {"peer", sr.Peer}} {
				all := merge(m.m.Failures, m.m.WarmupFailures)
				if n := count(all); n > 0 {
					out = append(out, fmt.Sprintf("round %d %s %s: %d failed (%s)", r+1, b.shapes[i].Name, m.mode, n, measure.Causes(all, 3)))
				}
			}
		}
	}
	return out
}

// verdict is the exit code once every round ran: 1 when any answer failed.
func (b *bench) verdict() int {
	f := b.failures()
	if len(f) == 0 {
		return 0
	}
	fmt.Fprintln(os.Stderr, "bench-reads: failed answers:", strings.Join(f, "; "))
	return 1
}

func merge(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}

func count(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
