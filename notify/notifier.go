// Package notify is the notifier: when a creator schedules or starts a drop,
// it writes a notification for every follower, in keyset batches of short
// transactions, so a creator with millions of followers never holds one
// giant transaction. Each batch also writes one NotificationsCreated event,
// through which every instance's live hub tells the followers connected to
// it. It runs in one shared consumer group.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"livedrops/domain"
	"livedrops/store"
)

// ConsumerName is the name the notifier records handled events under.
const ConsumerName = "notifier"

// DefaultBatchSize is how many followers one transaction notifies.
const DefaultBatchSize = 1000

var (
	notificationsWritten = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_notifications_created_total",
		Help: "Notifications the notifier wrote, by kind.",
	}, []string{"kind"})
	walkSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "livedrops_notifier_walk_seconds",
		Help:    "Time to notify every follower of a creator about one drop event.",
		Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300},
	})
	undecodable = promauto.NewCounter(prometheus.CounterOpts{
		Name: "livedrops_notifier_undecodable_total",
		Help: "Drop events the notifier skipped because their payload could not be read.",
	})
)

// kinds maps the events the notifier acts on to the notification they make.
var kinds = map[string]domain.NotificationKind{
	domain.EventDropScheduled: domain.NotificationDropScheduled,
	domain.EventDropStarted:   domain.NotificationDropStarted,
}

// Notifier turns drop events into notifications for the creator's followers.
type Notifier struct {
	db  *store.DB
	log *slog.Logger
	// BatchSize is how many followers one transaction notifies; set it
	// before the first Handle.
	BatchSize int

	// The walk of the event that last failed and how far it got, so the
	// consumer's retry of that event picks up there. Walking again from the
	// start would be just as correct (a notified follower is skipped), only
	// slower.
	mu         sync.Mutex
	resumeID   string
	resumeFrom int64
}

// New returns a notifier writing through db.
func New(db *store.DB, log *slog.Logger) *Notifier {
	return &Notifier{db: db, log: log, BatchSize: DefaultBatchSize}
}

// Handle notifies the followers of the creator of a scheduled or started
// drop; other events are ignored. An event handled before (this one, or a
// copy with the same id) writes nothing again. Any failure is returned, so
// the consumer offers the event again rather than skip a follower; the retry
// continues where the failed walk stopped. Only an event whose payload
// cannot be read is logged and skipped: no retry could ever succeed.
func (n *Notifier) Handle(ctx context.Context, ev domain.Event) error {
	kind, ok := kinds[ev.Type]
	if !ok {
		return nil
	}
	var p domain.DropPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil || p.DropID == 0 || p.CreatorID == 0 {
		undecodable.Inc()
		n.log.Error("notifier: skipping a drop event whose payload cannot be read",
			"type", ev.Type, "id", ev.ID, "err", err, "payload", string(ev.Payload))
		return nil
	}
	handled, err := n.db.EventConsumed(ctx, ConsumerName, ev.ID)
	if err != nil {
		return fmt.Errorf("notify: check whether event %s was handled: %w", ev.ID, err)
	}
	if handled {
		return nil
	}

	start := time.Now()
	after := n.resume(ev.ID)
	written := 0
	for {
		inserted, last, done, err := n.db.InsertNotificationsForFollowers(ctx, p.CreatorID, p.DropID, kind, after, n.BatchSize)
		written += len(inserted)
		notificationsWritten.WithLabelValues(string(kind)).Add(float64(len(inserted)))
		if err != nil {
			n.checkpoint(ev.ID, after)
			return fmt.Errorf("notify: notify followers of creator #%d after user #%d of drop #%d (%s): %w",
				p.CreatorID, after, p.DropID, ev.Type, err)
		}
		after = last
		if done {
			break
		}
	}
	if err := n.db.MarkEventConsumed(ctx, ConsumerName, ev.ID); err != nil {
		n.checkpoint(ev.ID, after)
		return fmt.Errorf("notify: record event %s as handled: %w", ev.ID, err)
	}
	n.checkpoint("", 0)
	took := time.Since(start)
	walkSeconds.Observe(took.Seconds())
	n.log.Info("notifier: followers notified", "creator", p.CreatorID, "drop", p.DropID, "kind", kind,
		"written", written, "took", took.Round(time.Millisecond))
	return nil
}

// resume returns the follower the walk of event id starts after.
func (n *Notifier) resume(id string) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.resumeID == id {
		return n.resumeFrom
	}
	return 0
}

func (n *Notifier) checkpoint(id string, after int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.resumeID, n.resumeFrom = id, after
}
