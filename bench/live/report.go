package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"

	"livedrops/bench/internal/measure"
	"livedrops/bench/internal/rig"
)

func (b *bench) header() {
	o := b.o
	b.printf("live updates benchmark (make bench-live)\n")
	b.printf("machine    %d CPU cores shared by everything: the server, this load process (subscribers and buyers),\n", runtime.NumCPU())
	b.printf("           PostgreSQL, Redis, the Kafka broker and the S3 server. Figures are this machine's, not a capacity claim.\n")
	if load := rig.LoadAverage(); load != "" {
		b.printf("           load average before the run %s (1/5/15 min)\n", load)
	}
	b.printf("load       %d WebSocket subscribers (graphql-transport-ws, dropUpdated: status and stock) on one LIVE drop\n", o.subscribers)
	b.printf("           of %d units, anonymous, from this process; then %d buyers order one unit each over %d keep-alive\n", o.stock, o.buyers, o.conns)
	b.printf("           HTTP connections while they listen\n")
	b.printf("latency    per new stock state a subscriber receives: receipt - commit of the transaction that made it\n")
	b.printf("           (outbox created_at = clock_timestamp() of its events' insert, after the row-lock wait, just before the commit);\n")
	b.printf("           lower bound: receipt - when that order's HTTP answer (sent after the commit) reached the buyer\n")
	b.printf("memory     per idle subscriber: the server's live heap + goroutine stacks (its /metrics, right after a garbage\n")
	b.printf("           collection), %s after start and %s after the last subscriber got its first state, difference /\n", o.idleSettle, o.idleSettle)
	b.printf("           subscribers; also the heap in use (with the free room of its spans) and the resident set (VmRSS)\n")
}

func ms(d float64) string { return fmt.Sprintf("%.1f", d) }

func percentiles(s measure.Summary) string {
	if s.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s, p95 %s, p99 %s, max %s ms (n=%d)", ms(measure.Millis(s.P50)), ms(measure.Millis(s.P95)),
		ms(measure.Millis(s.P99)), ms(measure.Millis(s.Max)), s.Count)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (b *bench) report() {
	f := b.f
	n := b.o.subscribers
	b.printf("connect    %d subscribers connected and received their first state in %.1fs (%.0f/s); the server counts %.0f drop subscriptions\n",
		n, f.ConnectTime.Seconds(), float64(n)/f.ConnectTime.Seconds(), f.ServerSubs)
	perSub := func(before, after int64) float64 { return float64(after-before) / float64(n) / 1024 }
	b.printf("idle       server live heap %s -> %s, stacks %s -> %s: %.1f KiB per subscriber (heap %.1f + stacks %.1f);\n",
		mib(f.Idle.HeapAlloc), mib(f.Loaded.HeapAlloc), mib(f.Idle.StackInuse), mib(f.Loaded.StackInuse), f.LivePerSub,
		perSub(f.Idle.HeapAlloc, f.Loaded.HeapAlloc), perSub(f.Idle.StackInuse, f.Loaded.StackInuse))
	b.printf("           goroutines %d -> %d = %.1f per subscriber; heap in use + stacks %.1f KiB per subscriber;\n",
		f.Idle.Goroutines, f.Loaded.Goroutines, float64(f.Loaded.Goroutines-f.Idle.Goroutines)/float64(n), f.InusePerSub)
	b.printf("           resident set %s -> %s = %.1f KiB per subscriber (start-up garbage not yet returned to the system is in both)\n",
		mib(f.Idle.RSS), mib(f.Loaded.RSS), f.RSSPerSub)
	o := f.Orders
	b.printf("stampede   accepted %d in %.2fs = %.0f/s | answers %d in %.2fs | accepted p99 %s ms, SOLD_OUT p99 %s ms\n",
		o.Accepted, o.AcceptedWindow.Seconds(), o.AcceptedPerSecond(), o.Answers, o.AnswerWindow.Seconds(),
		ms(measure.Millis(o.OrderedLatency.P99)), ms(measure.Millis(o.SoldOutLatency.P99)))
	l := f.Ledger
	b.printf("           drop #%d: available %d + reserved %d + sold %d = total %d, %s; %d orders; outbox published %.1fs after the last answer\n",
		l.DropID, l.Available, l.Reserved, l.Sold, l.Total, f.Final.Status, l.Orders, f.OutboxDrain.Seconds())
	d := f.Delivery
	b.printf("delivery   %d updates delivered (%.1f per subscriber) of %d stock states committed; %d new stock states timed\n",
		d.Updates, float64(d.Updates)/float64(n), f.Commits, f.FromCommit.Count)
	b.printf("           from the transaction's commit:          %s\n", percentiles(f.FromCommit))
	b.printf("           from the order's answer (lower bound): %s\n", percentiles(f.FromAnswer))
	b.printf("           the gap, each order's events' insert to its answer (commit, reply): %s\n",
		percentiles(f.CommitToAnswer))
	if f.CPUErr == nil {
		perUpdate := "-"
		if d.Updates > 0 {
			perUpdate = fmt.Sprintf("%.1f", float64(f.CPU.ServerTime.Microseconds())/float64(d.Updates))
		}
		b.printf("cpu        cores busy from the first order to the last subscriber final: server %.2f, this load process %.2f,\n", f.CPU.Server, f.CPU.Self)
		b.printf("           whole machine %.2f (PostgreSQL, Redis, Kafka and other processes %.2f); server CPU per update delivered %s us\n",
			f.CPU.Machine, max(0, f.CPU.Machine-f.CPU.Server-f.CPU.Self), perUpdate)
	}
	b.printf("final      stale subscribers %d after %.2fs (last state not the final one); streams ended early %d; states moved back %d; unmatched %d\n",
		f.Stale, f.Settle.Seconds(), len(f.Ended), d.MovedBack, d.Unmatched)
	if len(f.Ended) > 0 {
		b.printf("           first early end: %v\n", f.Ended[0])
	}
	p50, p99 := measure.Millis(f.FromCommit.P50), measure.Millis(f.FromCommit.P99)
	b.printf("targets\n")
	b.printf("  delivery p99 < %.0f ms (from the commit): %.1f ms  %s\n", targetP99Ms, p99, passFail(f.FromCommit.Count > 0 && p99 < targetP99Ms))
	b.printf("  stale subscribers = 0: %d  %s\n", f.Stale, passFail(f.Stale == 0))
	b.printf("  server memory per idle subscriber <= %.0f KiB (live heap + stacks): %.1f KiB  %s\n",
		targetKiBPerSubscriber, f.LivePerSub, passFail(f.LivePerSub <= targetKiBPerSubscriber))
	b.printf("%s\n", lastLine(n, p50, p99, f.Stale, f.LivePerSub))
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// lastLine is the machine-readable summary, always the output's last line.
func lastLine(subscribers int, p50, p99 float64, stale int, kibPerSubscriber float64) string {
	return fmt.Sprintf("live: subscribers=%d p50_ms=%d p99_ms=%d stale=%d kib_per_subscriber=%d",
		subscribers, int(math.Round(p50)), int(math.Round(p99)), stale, int(math.Round(kibPerSubscriber)))
}

// verdict is the exit code once the run completed: 1 when a subscriber was
// left stale or lost its stream, or the figures cannot be trusted.
func (b *bench) verdict() int {
	f := b.f
	var why []string
	if f.Stale > 0 {
		why = append(why, fmt.Sprintf("%d subscribers stale", f.Stale))
	}
	if len(f.Ended) > 0 {
		why = append(why, fmt.Sprintf("%d subscriptions ended early (first: %v)", len(f.Ended), f.Ended[0]))
	}
	if f.Delivery.MovedBack > 0 {
		why = append(why, fmt.Sprintf("%d states moved the stock back", f.Delivery.MovedBack))
	}
	if f.Delivery.Unmatched > 0 {
		why = append(why, fmt.Sprintf("%d states match no stock event", f.Delivery.Unmatched))
	}
	if f.FromCommit.Count == 0 {
		why = append(why, "no stock update reached any subscriber")
	}
	if n := f.Ledger.Oversold(); n > 0 {
		why = append(why, fmt.Sprintf("%d units oversold", n))
	}
	if len(why) == 0 {
		return 0
	}
	fmt.Fprintln(os.Stderr, "bench-live: failed:", strings.Join(why, "; "))
	return 1
}
