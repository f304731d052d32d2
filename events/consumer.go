package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"livedrops/store"
)

var (
	consumerHandled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_consumer_events_total",
		Help: "Events a consumer handled successfully.",
	}, []string{"consumer"})
	consumerHandleErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_consumer_handle_errors_total",
		Help: "Handler failures; the event is offered again after a pause.",
	}, []string{"consumer"})
	consumerPoison = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_consumer_poison_total",
		Help: "Messages that could not be decoded as an event envelope and were skipped.",
	}, []string{"consumer"})
)

// Timing of the consuming loop.
const (
	pollTimeout      = 100 * time.Millisecond // also how fast Close and ctx are noticed
	commitInterval   = 500 * time.Millisecond // most time a handled offset waits to be committed
	firstRetryPause  = 100 * time.Millisecond
	maxRetryPause    = 5 * time.Second
	watermarkTimeout = 10 * time.Second
)

// Consumer reads event envelopes from one topic and hands each to a Handler,
// one at a time, in partition order.
//
// A group consumer (NewGroupConsumer) shares the topic's partitions with the
// other members of its group and commits an offset only once the handler
// succeeded for the events before it; a handler error does not skip the event
// but seeks back to it and offers it again after a pause. Delivery is
// therefore at least once, and handlers must be idempotent (dedupe by id).
//
// A tail consumer (NewTailConsumer) reads every partition from the end of the
// log as it was when it was created, commits nothing, and is meant for the
// per-instance live hub.
//
// The one message ever skipped is a poison message, one whose value is not an
// event envelope: it can never succeed, and retrying it would stall its
// partition for good. It is logged, counted (livedrops_consumer_poison_total)
// and kept in DeadLetters when set.
type Consumer struct {
	// DeadLetters keeps poison messages; nil keeps none. Set before Run.
	DeadLetters DeadLetters

	kc     *kafka.Consumer
	topic  string
	group  bool
	name   string // metric label: the group, or "tail"
	handle Handler
	log    *slog.Logger

	mu      sync.Mutex
	running bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
	logs    chan struct{} // closed when the log forwarder has stopped

	stored bool // offsets stored since the last commit; only Run's goroutine touches it
}

// NewGroupConsumer returns a consumer in the shared group, for consumers of
// which one copy should see each event (cache invalidator, notifier). A group
// that has committed nothing yet starts at the beginning of the topic, so no
// event published before its first start is lost.
func NewGroupConsumer(brokers, group, topic string, handle Handler, log *slog.Logger) (*Consumer, error) {
	kc, err := kafka.NewConsumer(consumerConfig(brokers, group, "earliest"))
	if err != nil {
		return nil, fmt.Errorf("events: create consumer in group %s for %s: %w", group, brokers, err)
	}
	return newConsumer(kc, topic, true, group, handle, log), nil
}

// NewTailConsumer returns a consumer of its own, positioned at the current end
// of every partition of topic: each event published after NewTailConsumer
// returns is handed to handle once Run runs, and none published before.
//
// It assigns the partitions itself at their high watermarks, read here,
// rather than subscribe with auto.offset.reset=latest: that resolves "latest"
// only after the group assignment, and silently misses what is published in
// between. Partitions added to the topic later are not followed.
func NewTailConsumer(brokers, topic string, handle Handler, log *slog.Logger) (*Consumer, error) {
	host, _ := os.Hostname()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	// librdkafka wants a group id even for assigned partitions; this one is
	// never joined nor committed to, so it leaves nothing on the broker.
	group := "livedrops-tail-" + host + "-" + hex.EncodeToString(suffix)
	// "latest" only for an offset gone out of range (retention): stay live.
	kc, err := kafka.NewConsumer(consumerConfig(brokers, group, "latest"))
	if err != nil {
		return nil, fmt.Errorf("events: create tail consumer for %s: %w", brokers, err)
	}
	c := newConsumer(kc, topic, false, "tail", handle, log)
	if err := c.assignAtEnd(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// consumerConfig is the configuration both kinds share: offsets are stored by
// the code once an event is handled and committed by it, never automatically.
func consumerConfig(brokers, group, reset string) *kafka.ConfigMap {
	return &kafka.ConfigMap{
		"bootstrap.servers":        brokers,
		"client.id":                "livedrops",
		"group.id":                 group,
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"auto.offset.reset":        reset,
		// Come back quickly once a broker returns after an outage.
		"reconnect.backoff.max.ms": 2000,
		"go.logs.channel.enable":   true,
	}
}

// DeadLetters keeps the messages a consumer could not decode.
type DeadLetters interface {
	RecordDeadLetter(ctx context.Context, d store.DeadLetter) error
}

// deadLetterTimeout bounds keeping one poison message: past it the consumer
// moves on without the record rather than stall its partitions.
const deadLetterTimeout = 2 * time.Second

func newConsumer(kc *kafka.Consumer, topic string, group bool, name string, handle Handler, log *slog.Logger) *Consumer {
	c := &Consumer{kc: kc, topic: topic, group: group, name: name, handle: handle, log: log, logs: make(chan struct{})}
	go func() {
		defer close(c.logs)
		forwardLogs(log, "consumer "+name, kc.Logs())
	}()
	return c
}

// assignAtEnd assigns every partition of the topic at its high watermark.
func (c *Consumer) assignAtEnd() error {
	md, err := c.kc.GetMetadata(&c.topic, false, int(watermarkTimeout/time.Millisecond))
	if err != nil {
		return fmt.Errorf("events: read partitions of %s: %w", c.topic, err)
	}
	tm, ok := md.Topics[c.topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError || len(tm.Partitions) == 0 {
		return fmt.Errorf("events: read partitions of %s: topic missing (%v)", c.topic, tm.Error)
	}
	parts := make([]kafka.TopicPartition, 0, len(tm.Partitions))
	for _, p := range tm.Partitions {
		_, high, err := c.kc.QueryWatermarkOffsets(c.topic, p.ID, int(watermarkTimeout/time.Millisecond))
		if err != nil {
			return fmt.Errorf("events: read end of %s[%d]: %w", c.topic, p.ID, err)
		}
		parts = append(parts, kafka.TopicPartition{Topic: &c.topic, Partition: p.ID, Offset: kafka.Offset(high)})
	}
	if err := c.kc.Assign(parts); err != nil {
		return fmt.Errorf("events: assign %d partitions of %s: %w", len(parts), c.topic, err)
	}
	return nil
}

// Run hands events to the handler until ctx ends or Close is called, then
// commits what was handled and returns nil. It returns an error only when the
// client cannot go on (a fatal Kafka error). Run may be called once.
func (c *Consumer) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.closed || c.running {
		c.mu.Unlock()
		return errors.New("events: consumer already running or closed")
	}
	c.running = true
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	done := c.done
	c.mu.Unlock()
	defer close(done)

	if c.group {
		if err := c.kc.Subscribe(c.topic, c.rebalanced); err != nil {
			return fmt.Errorf("events: subscribe group %s to %s: %w", c.name, c.topic, err)
		}
	}
	lastCommit := time.Now()
	failures := 0
	for ctx.Err() == nil {
		if time.Since(lastCommit) >= commitInterval {
			c.commit()
			lastCommit = time.Now()
		}
		switch e := c.kc.Poll(int(pollTimeout / time.Millisecond)).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				c.log.Warn("kafka consumer: message error", "consumer", c.name, "err", e.TopicPartition.Error)
				continue
			}
			if err := c.process(ctx, e); err != nil {
				if ctx.Err() != nil {
					break
				}
				failures++
				c.retryLater(ctx, e, err, failures)
				continue
			}
			failures = 0
		case kafka.Error:
			if e.IsFatal() {
				c.commit()
				return fmt.Errorf("events: consumer %s: %w", c.name, e)
			}
			if e.Code() == kafka.ErrTransport {
				// librdkafka's own log line already reports the connection failure.
				c.log.Debug("kafka consumer: error", "consumer", c.name, "err", e)
			} else {
				c.log.Warn("kafka consumer: error", "consumer", c.name, "err", e)
			}
		}
	}
	c.commit()
	return nil
}

// process decodes and handles one message; a nil error means the message is
// done with (handled, or poison and skipped) and its offset may be committed.
func (c *Consumer) process(ctx context.Context, m *kafka.Message) error {
	ev, err := Decode(m.Value)
	if err != nil {
		consumerPoison.WithLabelValues(c.name).Inc()
		c.log.Error("kafka consumer: skipping a message that is not an event envelope",
			"consumer", c.name, "partition", m.TopicPartition.Partition, "offset", m.TopicPartition.Offset, "err", err)
		c.keepDeadLetter(ctx, m, err)
		c.markDone(m)
		return nil
	}
	if err := c.handle(ctx, ev); err != nil {
		return err
	}
	consumerHandled.WithLabelValues(c.name).Inc()
	c.markDone(m)
	return nil
}

// keepDeadLetter records the poison message m in DeadLetters, if set; a
// failure to record it is logged, and the consumer moves on all the same.
func (c *Consumer) keepDeadLetter(ctx context.Context, m *kafka.Message, cause error) {
	if c.DeadLetters == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, deadLetterTimeout)
	defer cancel()
	err := c.DeadLetters.RecordDeadLetter(ctx, store.DeadLetter{
		Source: c.name, Topic: c.topic, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset),
		Key: string(m.Key), Payload: m.Value, Error: cause.Error(),
	})
	if err != nil {
		c.log.Warn("kafka consumer: could not keep a poison message in dead_letters", "consumer", c.name,
			"partition", m.TopicPartition.Partition, "offset", m.TopicPartition.Offset, "err", err)
	}
}

// markDone stores the offset after m, to be committed with the next commit.
func (c *Consumer) markDone(m *kafka.Message) {
	if !c.group {
		return
	}
	next := m.TopicPartition
	next.Offset++
	if _, err := c.kc.StoreOffsets([]kafka.TopicPartition{next}); err != nil {
		// Only for a partition just revoked: its new owner starts from the
		// last commit and handles the event again, which idempotence absorbs.
		c.log.Warn("kafka consumer: store offset", "consumer", c.name, "err", err)
		return
	}
	c.stored = true
}

// retryLater rewinds m's partition to m, so neither m nor anything after it
// in that partition is lost, and pauses before the next attempt.
func (c *Consumer) retryLater(ctx context.Context, m *kafka.Message, cause error, failures int) {
	consumerHandleErrors.WithLabelValues(c.name).Inc()
	pause := min(firstRetryPause<<min(failures-1, 10), maxRetryPause)
	c.log.Warn("kafka consumer: handler failed; retrying the event", "consumer", c.name,
		"partition", m.TopicPartition.Partition, "offset", m.TopicPartition.Offset, "attempt", failures, "retry_in", pause, "err", cause)
	if err := c.kc.Seek(m.TopicPartition, 0); err != nil {
		// Without the rewind the next poll would move past m: retry right
		// here instead, holding the whole consumer until m is handled.
		c.log.Error("kafka consumer: rewind failed; retrying in place", "consumer", c.name, "err", err)
		for ctx.Err() == nil {
			if !sleepCtx(ctx, pause) {
				return
			}
			if err := c.process(ctx, m); err == nil {
				return
			}
			consumerHandleErrors.WithLabelValues(c.name).Inc()
			pause = min(2*pause, maxRetryPause)
		}
		return
	}
	sleepCtx(ctx, pause)
}

// commit commits the offsets stored since the last commit.
func (c *Consumer) commit() {
	if !c.group || !c.stored {
		return
	}
	if _, err := c.kc.Commit(); err != nil {
		var kerr kafka.Error
		if !errors.As(err, &kerr) || kerr.Code() != kafka.ErrNoOffset {
			c.log.Warn("kafka consumer: commit offsets", "consumer", c.name, "err", err)
			return // kept stored: the next commit tries again
		}
	}
	c.stored = false
}

// rebalanced commits the handled offsets before partitions go to another
// member, so it does not handle them again; the client then applies the
// assignment change itself.
func (c *Consumer) rebalanced(_ *kafka.Consumer, ev kafka.Event) error {
	switch e := ev.(type) {
	case kafka.RevokedPartitions:
		c.commit()
		c.log.Debug("kafka consumer: partitions revoked", "consumer", c.name, "count", len(e.Partitions))
	case kafka.AssignedPartitions:
		c.log.Debug("kafka consumer: partitions assigned", "consumer", c.name, "count", len(e.Partitions))
	}
	return nil
}

// Close stops Run, waits for it to return, and leaves the group.
func (c *Consumer) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if err := c.kc.Close(); err != nil {
		c.log.Warn("kafka consumer: close", "consumer", c.name, "err", err)
	}
	<-c.logs
}

// sleepCtx waits for d or ctx, reporting whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
