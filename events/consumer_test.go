package events

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"livedrops/domain"
	"livedrops/internal/testenv"
)

func publish(t *testing.T, p *Producer, topic string, evs []domain.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.Publish(ctx, topic, evs); err != nil {
		t.Fatal(err)
	}
}

func TestTailConsumerStartsAtTheEnd(t *testing.T) {
	brokers, topic := testenv.Kafka(t)
	p := newProducer(t, brokers)
	ks := keys(6) // spread over the partitions
	old := newEvents(t, ks, 0, 30)
	publish(t, p, topic, old)

	col := &collector{}
	c, err := NewTailConsumer(brokers, topic, col.handle, testLog)
	if err != nil {
		t.Fatal(err)
	}
	// Published between creation and Run: a consumer that resolved "latest"
	// only once running would miss these.
	early := newEvents(t, ks, 5, 6)
	publish(t, p, topic, early)
	startConsumer(t, c)
	late := newEvents(t, ks, 6, 6)
	publish(t, p, topic, late)

	// None of the old events, all of the others, in order.
	checkExactlyOnceInOrder(t, col.waitFor(t, len(early)+len(late), 10*time.Second), append(early, late...))
}

func TestGroupConsumerRetriesAFailedEvent(t *testing.T) {
	brokers, topic := testenv.Kafka(t)
	p := newProducer(t, brokers)
	evs := newEvents(t, []string{"drop:1"}, 0, 4) // one key: one partition, one order
	publish(t, p, topic, evs)

	var mu sync.Mutex
	var attempts []string
	failed := false
	c, err := NewGroupConsumer(brokers, "retry-"+topic, topic, func(_ context.Context, ev domain.Event) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, ev.ID)
		if ev.ID == evs[1].ID && !failed {
			failed = true
			return errors.New("database briefly unavailable")
		}
		return nil
	}, testLog)
	if err != nil {
		t.Fatal(err)
	}
	startConsumer(t, c)
	eventually(t, 10*time.Second, "all events handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts) >= 5
	})
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	want := []string{evs[0].ID, evs[1].ID, evs[1].ID, evs[2].ID, evs[3].ID}
	if len(attempts) != len(want) {
		t.Fatalf("handler saw %d attempts, want %d: %v", len(attempts), len(want), attempts)
	}
	for i := range want {
		if attempts[i] != want[i] {
			t.Fatalf("attempt %d was %s, want %s (the failed event must be retried before anything after it)", i, attempts[i], want[i])
		}
	}
}

func TestGroupConsumerCommitsOnlyHandledEvents(t *testing.T) {
	brokers, topic := testenv.Kafka(t)
	p := newProducer(t, brokers)
	evs := newEvents(t, []string{"drop:1"}, 0, 3)
	publish(t, p, topic, evs)
	group := "commit-" + topic

	// The first member handles evs[0] and then keeps failing on evs[1].
	var mu sync.Mutex
	var first []string
	c1, err := NewGroupConsumer(brokers, group, topic, func(_ context.Context, ev domain.Event) error {
		mu.Lock()
		defer mu.Unlock()
		first = append(first, ev.ID)
		if ev.ID == evs[1].ID {
			return errors.New("downstream down")
		}
		return nil
	}, testLog)
	if err != nil {
		t.Fatal(err)
	}
	stop := startConsumer(t, c1)
	eventually(t, 10*time.Second, "evs[1] retried", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(first) >= 3
	})
	stop()
	for _, id := range first[1:] {
		if id != evs[1].ID {
			t.Fatalf("after evs[1] failed the consumer moved on to %s", id)
		}
	}

	// The next member of the group starts at the event that never succeeded.
	col := &collector{}
	c2, err := NewGroupConsumer(brokers, group, topic, col.handle, testLog)
	if err != nil {
		t.Fatal(err)
	}
	startConsumer(t, c2)
	got := col.waitFor(t, 2, 10*time.Second)
	if len(got) != 2 || got[0].ID != evs[1].ID || got[1].ID != evs[2].ID {
		t.Fatalf("the group resumed with %v, want evs[1] then evs[2]", ids(got))
	}
}

// A message that is not an envelope is counted, kept in dead_letters and
// skipped; the events after it, on its partition too, are handled.
func TestGroupConsumerSkipsPoisonMessage(t *testing.T) {
	db, _ := openDB(t)
	brokers, topic := testenv.Kafka(t)
	p := newProducer(t, brokers)
	evs := newEvents(t, []string{"drop:1"}, 0, 2)
	publish(t, p, topic, evs[:1])
	// Not an envelope, on the same partition as the events around it.
	reports := make(chan kafka.Event, 1)
	err := p.kp.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte("drop:1"),
		Value:          []byte("not json"),
	}, reports)
	if err != nil {
		t.Fatal(err)
	}
	if m := (<-reports).(*kafka.Message); m.TopicPartition.Error != nil {
		t.Fatal(m.TopicPartition.Error)
	}
	publish(t, p, topic, evs[1:])

	poison := consumerPoison.WithLabelValues("poison-" + topic)
	col := &collector{}
	c, err := NewGroupConsumer(brokers, "poison-"+topic, topic, col.handle, testLog)
	if err != nil {
		t.Fatal(err)
	}
	c.DeadLetters = db
	startConsumer(t, c)
	checkExactlyOnceInOrder(t, col.waitFor(t, 2, 10*time.Second), evs)
	if n := testutil.ToFloat64(poison); n != 1 {
		t.Fatalf("poison messages counted: %v, want 1", n)
	}
	var dead []struct {
		Source  string `db:"source"`
		Topic   string `db:"topic"`
		Key     string `db:"key"`
		Payload string `db:"payload"`
		Error   string `db:"error"`
	}
	if err := db.SelectContext(context.Background(), &dead, `SELECT source, topic, key,
		convert_from(payload, 'UTF8') AS payload, error FROM dead_letters`); err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Source != "poison-"+topic || dead[0].Topic != topic || dead[0].Key != "drop:1" ||
		dead[0].Payload != "not json" || dead[0].Error == "" {
		t.Fatalf("dead letters = %+v, want the poison message", dead)
	}
}

func TestEnsureTopicIsIdempotent(t *testing.T) {
	brokers, base := testenv.Kafka(t)
	topic := base + ".ensure"
	ctx := context.Background()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": brokers, "log_level": 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.DeleteTopics(ctx, []string{topic})
		admin.Close()
	})
	for range 2 {
		if err := EnsureTopic(ctx, brokers, topic, 3); err != nil {
			t.Fatal(err)
		}
	}
	md, err := admin.GetMetadata(&topic, false, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Topics[topic].Partitions); n != 3 {
		t.Fatalf("topic has %d partitions, want 3", n)
	}
}

func TestDecodeRefusesNonEnvelopes(t *testing.T) {
	for _, in := range []string{``, `not json`, `{}`, `{"id":"x"}`, `{"type":"SoldOut"}`, `[1]`} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) succeeded", in)
		}
	}
	ev := newEvents(t, []string{"drop:1"}, 0, 1)[0]
	b, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || got.ID != ev.ID || got.Key != ev.Key || got.Type != ev.Type || !got.OccurredAt.Equal(ev.OccurredAt) {
		t.Fatalf("Decode(Encode(ev)) = %+v, %v; want %+v", got, err, ev)
	}
}

func TestProducerRecoversFromFatalError(t *testing.T) {
	brokers, topic := testenv.Kafka(t)
	p := newProducer(t, brokers)
	evs := newEvents(t, []string{"drop:1"}, 0, 2)
	publish(t, p, topic, evs[:1])
	// What the idempotent producer raises when the broker lost acknowledged data.
	p.kp.TestFatalError(kafka.ErrOutOfOrderSequenceNumber, "test: broker lost acknowledged messages")
	if p.kp.GetFatalError() == nil {
		t.Fatal("no fatal error raised")
	}
	publish(t, p, topic, evs[1:])

	col := groupCollector(t, brokers, topic)
	checkExactlyOnceInOrder(t, col.waitFor(t, 2, 10*time.Second), evs)
}

func TestClientsLeaveNoGoroutinesBehind(t *testing.T) {
	db, url := openDB(t)
	brokers, topic := testenv.Kafka(t)
	evs := newEvents(t, keys(3), 0, 30)
	enqueue(t, db, evs, 10)
	base := runtime.NumGoroutine()

	p, err := NewProducer(brokers, testLog)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	relayDone := make(chan error, 1)
	go func() { relayDone <- NewRelay(db, url, p, topic, testLog).Run(ctx) }()
	col := &collector{}
	group, err := NewGroupConsumer(brokers, "leak-"+topic, topic, col.handle, testLog)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := NewTailConsumer(brokers, topic, func(context.Context, domain.Event) error { return nil }, testLog)
	if err != nil {
		t.Fatal(err)
	}
	groupDone := make(chan error, 1)
	go func() { groupDone <- group.Run(context.Background()) }()
	tailDone := make(chan error, 1)
	go func() { tailDone <- tail.Run(context.Background()) }()
	col.waitFor(t, len(evs), 10*time.Second)

	cancel()
	group.Close()
	tail.Close()
	for _, done := range []chan error{relayDone, groupDone, tailDone} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	// The relay's database connections idle in the pool; they are not ours to count.
	db.SetMaxIdleConns(0)
	eventually(t, 5*time.Second, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= base
	})
}
