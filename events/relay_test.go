package events

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/store"
)

func TestRelayPublishesOutboxInKeyOrder(t *testing.T) {
	db, url := openDB(t)
	brokers, topic := testenv.Kafka(t)
	col := groupCollector(t, brokers, topic)

	ks := keys(5)
	before := newEvents(t, ks, 0, 120)
	enqueue(t, db, before, 7)
	published := testutil.ToFloat64(outboxPublished)
	// No poll tick in this test: events written while the relay runs must
	// wake it through NOTIFY.
	startRelay(t, db, url, newProducer(t, brokers), topic, func(r *Relay) {
		r.PollInterval = time.Hour
		r.BatchSize = 50
	})
	col.waitFor(t, len(before), 15*time.Second)
	after := newEvents(t, ks, 120/5, 80)
	enqueue(t, db, after, 3)

	want := append(before, after...)
	checkExactlyOnceInOrder(t, col.waitFor(t, len(want), 15*time.Second), want)
	if got := testutil.ToFloat64(outboxPublished) - published; got != float64(len(want)) {
		t.Errorf("livedrops_outbox_published_total grew by %v, want %d", got, len(want))
	}
	lag, err := db.OutboxLag(context.Background())
	if err != nil || lag != 0 {
		t.Fatalf("outbox lag after delivery = %v, %v; want 0 (all marked published)", lag, err)
	}
}

// Two poison rows, one that does not decode and one too large for the
// broker, go to dead_letters; every other event, of their key too, is
// published once and in order.
func TestRelayDeadLettersPoisonAndGoesOn(t *testing.T) {
	db, url := openDB(t)
	brokers, topic := testenv.Kafka(t)
	col := groupCollector(t, brokers, topic)
	ctx := context.Background()

	ks := keys(3)
	before := newEvents(t, ks, 0, 30)
	enqueue(t, db, before, 10)
	if _, err := db.ExecContext(ctx, `INSERT INTO outbox (topic, key, type, payload) VALUES ($1, 'drop:1', 'StockChanged', '{"seq": 1}')`, db.Topic); err != nil {
		t.Fatal(err)
	}
	huge, err := store.NewEvent(domain.EventStockChanged, "drop:1", map[string]string{"pad": strings.Repeat("x", 2<<20)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, db, []domain.Event{huge}, 1)
	after := newEvents(t, ks, 10, 30)
	enqueue(t, db, after, 10)

	dead := testutil.ToFloat64(outboxDeadLetters)
	startRelay(t, db, url, newProducer(t, brokers), topic, func(r *Relay) { r.BatchSize = 25 })
	want := append(before, after...)
	checkExactlyOnceInOrder(t, col.waitFor(t, len(want), 15*time.Second), want)
	if got := testutil.ToFloat64(outboxDeadLetters) - dead; got != 2 {
		t.Errorf("livedrops_outbox_dead_letters_total grew by %v, want 2", got)
	}
	var rows []struct {
		Key   string `db:"key"`
		Size  int    `db:"size"`
		Error string `db:"error"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT key, length(payload) AS size, error FROM dead_letters WHERE source = 'relay' ORDER BY outbox_id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Key != "drop:1" || !strings.Contains(rows[0].Error, "no id or type") ||
		rows[1].Size < 2<<20 || !strings.Contains(rows[1].Error, "too large") {
		t.Fatalf("dead letters = %+v", rows)
	}
	if lag, err := db.OutboxLag(ctx); err != nil || lag != 0 {
		t.Fatalf("outbox lag = %v, %v; want 0: nothing left behind", lag, err)
	}
}

func TestTwoRelaysPublishEachEventOnce(t *testing.T) {
	db, url := openDB(t)
	brokers, topic := testenv.Kafka(t)
	col := groupCollector(t, brokers, topic)
	ks := keys(10)
	p := newProducer(t, brokers)
	tune := func(r *Relay) { r.BatchSize = 40; r.PollInterval = 200 * time.Millisecond }
	stopFirst := startRelay(t, db, url, p, topic, tune)
	startRelay(t, db, url, newProducer(t, brokers), topic, tune)

	// Written concurrently with both relays running, in many small transactions.
	first := newEvents(t, ks, 0, 500)
	enqueue(t, db, first, 25)
	col.waitFor(t, len(first), 15*time.Second)

	// Whichever relay was publishing, the other must carry on alone.
	stopFirst()
	second := newEvents(t, ks, 50, 500)
	enqueue(t, db, second, 25)

	want := append(first, second...)
	checkExactlyOnceInOrder(t, col.waitFor(t, len(want), 15*time.Second), want)
}

func TestRelayHoldsEventsWhileBrokerIsDown(t *testing.T) {
	db, url := openDB(t)
	addr := freeAddr(t)
	topic := "outage." + strconv.FormatInt(time.Now().UnixNano(), 36)

	// The producer starts with nothing listening at addr.
	startRelay(t, db, url, newProducer(t, addr), topic, func(r *Relay) {
		r.PollInterval = 200 * time.Millisecond
		r.LagInterval = 100 * time.Millisecond
	})
	ks := keys(4)
	want := newEvents(t, ks, 0, 200)
	enqueue(t, db, want[:100], 10)
	time.Sleep(500 * time.Millisecond)
	lag1, err := db.OutboxLag(context.Background())
	if err != nil || lag1 <= 0 {
		t.Fatalf("lag while the broker is down = %v, %v; want > 0", lag1, err)
	}
	enqueue(t, db, want[100:], 10)
	time.Sleep(time.Second)
	lag2, err := db.OutboxLag(context.Background())
	if err != nil || lag2 <= lag1 {
		t.Fatalf("lag did not grow while the broker is down: %v then %v (%v)", lag1, lag2, err)
	}
	if g := testutil.ToFloat64(outboxLag); g <= 0 {
		t.Fatalf("livedrops_outbox_lag_seconds = %v while the broker is down, want > 0", g)
	}

	startBroker(t, addr, topic)
	col := groupCollector(t, addr, topic)
	checkExactlyOnceInOrder(t, col.waitFor(t, len(want), 15*time.Second), want)
	eventually(t, 5*time.Second, "outbox drained", func() bool {
		lag, err := db.OutboxLag(context.Background())
		return err == nil && lag == 0
	})
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

var brokerBinary struct {
	once sync.Once
	path string
	err  error
}

// startBroker runs the project's broker program as a process of its own on
// addr, with topic created, and stops it when the test ends.
func startBroker(t *testing.T, addr, topic string) {
	t.Helper()
	brokerBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "kafka-broker")
		if err != nil {
			brokerBinary.err = err
			return
		}
		brokerBinary.path = filepath.Join(dir, "kafka-broker")
		out, err := exec.Command("go", "build", "-o", brokerBinary.path, "livedrops/cmd/kafka-broker").CombinedOutput()
		if err != nil {
			brokerBinary.err = err
			t.Logf("go build: %s", out)
		}
	})
	if brokerBinary.err != nil {
		t.Fatalf("build kafka-broker: %v", brokerBinary.err)
	}
	cmd := exec.Command(brokerBinary.path, "-addr", addr, "-topics", topic, "-partitions", strconv.Itoa(testenv.KafkaPartitions))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kafka-broker: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	eventually(t, 10*time.Second, "kafka-broker listening on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if brokerBinary.path != "" {
		os.RemoveAll(filepath.Dir(brokerBinary.path))
	}
	os.Exit(code)
}
