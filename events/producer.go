package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"livedrops/domain"
	"livedrops/store"
)

// deliveryTimeout bounds how long librdkafka keeps trying one message; past
// it Publish fails and the relay retries the batch from the outbox, so it is
// kept well under the default five minutes.
const deliveryTimeout = 15 * time.Second

// Producer publishes event envelopes with an idempotent producer: acks from
// all in-sync replicas, no duplicates or reordering from the client's own
// retries, each key always on the same partition.
type Producer struct {
	brokers string
	log     *slog.Logger

	// mu guards kp: Publish holds it shared, replacing a failed producer
	// holds it exclusively.
	mu     sync.RWMutex
	kp     *kafka.Producer
	done   chan struct{} // closed when kp's event and log readers have stopped
	closed bool
}

// NewProducer connects a producer to the comma-separated brokers.
func NewProducer(brokers string, log *slog.Logger) (*Producer, error) {
	p := &Producer{brokers: brokers, log: log}
	kp, done, err := p.connect()
	if err != nil {
		return nil, err
	}
	p.kp, p.done = kp, done
	return p, nil
}

func (p *Producer) connect() (*kafka.Producer, chan struct{}, error) {
	kp, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers":  p.brokers,
		"client.id":          "livedrops",
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          5,
		"message.timeout.ms": int(deliveryTimeout / time.Millisecond),
		// Come back quickly once a broker returns after an outage.
		"reconnect.backoff.max.ms": 2000,
		// The Java client's partitioner: any client keying by drop id lands
		// on the same partition as we do.
		"partitioner": "murmur2_random",
		// Delivery reports need only the partition, offset and error.
		"go.delivery.report.fields": "none",
		"go.logs.channel.enable":    true,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("events: create producer for %s: %w", p.brokers, err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); forwardLogs(p.log, "producer", kp.Logs()) }()
	go func() { defer wg.Done(); p.watch(kp.Events()) }()
	go func() { wg.Wait(); close(done) }()
	return kp, done, nil
}

// watch logs the client-level events: delivery reports travel on each
// Publish call's own channel, so only errors and statistics arrive here. It
// returns when the producer is closed.
func (p *Producer) watch(evs <-chan kafka.Event) {
	for ev := range evs {
		switch e := ev.(type) {
		case kafka.Error:
			switch {
			case e.IsFatal():
				p.log.Error("kafka producer: fatal error; it will be replaced", "err", e)
			case e.Code() == kafka.ErrTransport:
				// librdkafka's own log line already reports the connection failure.
				p.log.Debug("kafka producer: error", "err", e)
			default:
				p.log.Warn("kafka producer: error", "err", e)
			}
		case *kafka.Message:
			// Only a message produced without a delivery channel lands here; none is.
			if e.TopicPartition.Error != nil {
				p.log.Error("kafka producer: delivery failed", "err", e.TopicPartition.Error)
			}
		}
	}
}

// Publish sends events to topic, each keyed by its Key with its type in a
// "type" header, and returns once the broker has acknowledged every one of
// them. Events that can never be delivered (they do not encode, or the client
// or broker refuses them for good: too large, malformed) are left out and
// reported in a *store.Refused once the others are acknowledged. Any other
// failure, or ctx ending first, is returned as such: the caller then
// publishes the whole batch again (consumers dedupe by id).
func (p *Producer) Publish(ctx context.Context, topic string, evs []domain.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := p.replaceIfFailed(); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return errors.New("events: publish: producer closed")
	}
	// Buffered for every report, so the client never blocks on it even
	// after Publish returned early: nothing outlives this call but garbage.
	reports := make(chan kafka.Event, len(evs))
	refused := map[int]error{}
	sent := 0
	for i, ev := range evs {
		value, err := Encode(ev)
		if err != nil {
			refused[i] = err
			continue
		}
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(ev.Key),
			Value:          value,
			Headers: []kafka.Header{
				{Key: "type", Value: []byte(ev.Type)},
				{Key: "id", Value: []byte(ev.ID)},
			},
			Opaque: i,
		}
		if err := p.produce(ctx, msg, reports); err != nil {
			if refusedForGood(err) {
				refused[i] = fmt.Errorf("events: publish %s event %s to %s: %w", ev.Type, ev.ID, topic, err)
				continue
			}
			return fmt.Errorf("events: publish %s event %s to %s: %w", ev.Type, ev.ID, topic, err)
		}
		sent++
	}
	var failed error
	nfailed := 0
	for range sent {
		select {
		case e := <-reports:
			m, ok := e.(*kafka.Message)
			if !ok {
				return fmt.Errorf("events: publish to %s: unexpected delivery report %v", topic, e)
			}
			if err := m.TopicPartition.Error; err != nil {
				if i, ok := m.Opaque.(int); ok && refusedForGood(err) {
					refused[i] = fmt.Errorf("events: publish %s event %s to %s: %w", evs[i].Type, evs[i].ID, topic, err)
					continue
				}
				nfailed++
				if failed == nil {
					failed = err
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("events: publish %d events to %s: waiting for acknowledgements: %w", len(evs), topic, ctx.Err())
		}
	}
	if failed != nil {
		return fmt.Errorf("events: publish to %s: %d of %d events not delivered: %w", topic, nfailed, len(evs), failed)
	}
	if len(refused) > 0 {
		return &store.Refused{Reasons: refused}
	}
	return nil
}

// refusedForGood reports whether err refuses one message for what it is, so
// that sending it again can never succeed.
func refusedForGood(err error) bool {
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return false
	}
	switch kerr.Code() {
	case kafka.ErrMsgSizeTooLarge, kafka.ErrInvalidMsgSize, kafka.ErrInvalidMsg, kafka.ErrInvalidRecord:
		return true
	}
	return false
}

// produce enqueues msg, waiting for room while the client's local queue is full.
func (p *Producer) produce(ctx context.Context, msg *kafka.Message, reports chan kafka.Event) error {
	for {
		err := p.kp.Produce(msg, reports)
		var kerr kafka.Error
		if !errors.As(err, &kerr) || kerr.Code() != kafka.ErrQueueFull {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// replaceIfFailed swaps in a new client when the current one hit a fatal
// error (the idempotent producer stops for good on one, e.g. after the
// broker lost acknowledged data), so the relay recovers without a restart.
func (p *Producer) replaceIfFailed() error {
	p.mu.RLock()
	fatal := !p.closed && p.kp.GetFatalError() != nil
	p.mu.RUnlock()
	if !fatal {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.kp.GetFatalError() == nil {
		return nil
	}
	p.log.Error("kafka producer: replacing the client after a fatal error", "err", p.kp.GetFatalError())
	kp, done, err := p.connect()
	if err != nil {
		return err
	}
	old, oldDone := p.kp, p.done
	p.kp, p.done = kp, done
	old.Close()
	<-oldDone
	return nil
}

// Close waits up to ten seconds for queued messages to be delivered, then
// releases the client. Publish fails after Close.
func (p *Producer) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	if left := p.kp.Flush(10_000); left > 0 {
		p.log.Warn("kafka producer: closing with undelivered messages", "count", left)
	}
	p.kp.Close()
	<-p.done
}
