package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"livedrops/domain"
	"livedrops/store"
)

// outboxChannel is the channel the outbox trigger notifies on every insert.
const outboxChannel = "outbox"

var (
	outboxPublished = promauto.NewCounter(prometheus.CounterOpts{
		Name: "livedrops_outbox_published_total",
		Help: "Outbox events published to Kafka and marked published.",
	})
	relayPublishErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "livedrops_relay_publish_errors_total",
		Help: "Outbox batches the relay failed to publish (the events stay in the outbox and are retried).",
	})
	outboxDeadLetters = promauto.NewCounter(prometheus.CounterOpts{
		Name: "livedrops_outbox_dead_letters_total",
		Help: "Outbox events that could never be published (undecodable, or refused for good) and went to dead_letters.",
	})
	outboxLag = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "livedrops_outbox_lag_seconds",
		Help: "Age of the oldest unpublished outbox event; 0 when the outbox is drained.",
	})
)

// Relay publishes committed outbox events to Kafka, in outbox order, and marks
// them published. Run one per instance: one publishes while the others stand
// by (see store.ClaimOutbox) and take over within a poll interval.
type Relay struct {
	db        *store.DB
	listenURL string
	producer  *Producer
	topic     string
	log       *slog.Logger

	// Tuning, read when Run starts.
	BatchSize    int           // events per transaction
	PollInterval time.Duration // longest wait without a notification: covers a lost NOTIFY and retries a standby
	MaxBackoff   time.Duration // longest pause after a failed publish
	LagInterval  time.Duration // how often the lag gauge is refreshed
}

// NewRelay returns a relay reading db's outbox, woken by notifications on a
// connection to listenURL, publishing to topic with p.
func NewRelay(db *store.DB, listenURL string, p *Producer, topic string, log *slog.Logger) *Relay {
	return &Relay{
		db: db, listenURL: listenURL, producer: p, topic: topic, log: log,
		BatchSize:    500,
		PollInterval: time.Second,
		MaxBackoff:   5 * time.Second,
		LagInterval:  time.Second,
	}
}

// Run publishes until ctx ends, then returns nil. Failures (database or broker
// down) are logged, counted and retried with backoff; the events wait in the
// outbox meanwhile and go out in order once publishing works again.
func (r *Relay) Run(ctx context.Context) error {
	if r.BatchSize <= 0 || r.PollInterval <= 0 || r.MaxBackoff <= 0 || r.LagInterval <= 0 {
		return fmt.Errorf("events: relay: batch size and intervals must be positive (%d, %v, %v, %v)",
			r.BatchSize, r.PollInterval, r.MaxBackoff, r.LagInterval)
	}
	ctx, cancel := context.WithCancel(ctx)
	listener := pq.NewListener(r.listenURL, 100*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			r.log.Warn("outbox relay: notification connection", "event", ev, "err", err)
		}
	})
	var wg sync.WaitGroup
	defer func() {
		cancel()
		listener.Close()
		wg.Wait()
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Listen waits until the connection is up; polling covers the wait.
		if err := listener.Listen(outboxChannel); err != nil && ctx.Err() == nil {
			r.log.Error("outbox relay: listen for outbox notifications", "err", err)
		}
	}()
	go func() { defer wg.Done(); r.watchLag(ctx) }()

	poll := time.NewTicker(r.PollInterval)
	defer poll.Stop()
	var backoff time.Duration
	for {
		err := r.drain(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			relayPublishErrors.Inc()
			backoff = min(max(2*backoff, 100*time.Millisecond), r.MaxBackoff)
			r.log.Error("outbox relay: publish failed; the events stay in the outbox", "err", err, "retry_in", backoff)
			if !sleepCtx(ctx, backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		select {
		case <-ctx.Done():
			return nil
		case <-listener.Notify: // nil after a reconnect: a notification may have been missed, so look anyway
			// One drain covers every insert notified so far.
			for len(listener.Notify) > 0 {
				<-listener.Notify
			}
		case <-poll.C:
		}
	}
}

// drain publishes batches until the outbox is empty or another relay holds it.
func (r *Relay) drain(ctx context.Context) error {
	publish := func(evs []domain.Event) error { return r.producer.Publish(ctx, r.topic, evs) }
	for {
		claim, err := r.db.ClaimOutbox(ctx, r.BatchSize, publish)
		if err != nil {
			return err
		}
		outboxPublished.Add(float64(claim.Published))
		if claim.DeadLettered > 0 {
			outboxDeadLetters.Add(float64(claim.DeadLettered))
			r.log.Error("outbox relay: events that can never be published went to dead_letters; the others went out",
				"count", claim.DeadLettered, "published", claim.Published)
		}
		if claim.Rows() < r.BatchSize {
			return nil
		}
	}
}

// watchLag refreshes the lag gauge until ctx ends. It runs beside the
// publishing loop so the gauge keeps moving while a publish hangs on an
// unreachable broker, which is when it matters.
func (r *Relay) watchLag(ctx context.Context) {
	t := time.NewTicker(r.LagInterval)
	defer t.Stop()
	for {
		r.updateLag(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Relay) updateLag(ctx context.Context) {
	lag, err := r.db.OutboxLag(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("outbox relay: read outbox lag", "err", err)
		}
		return
	}
	outboxLag.Set(lag.Seconds())
}
