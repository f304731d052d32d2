package notify

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/events"
	"livedrops/internal/testenv"
	"livedrops/live"
	"livedrops/store"
)

// TestOnlineFollowersSeeNotificationsLive runs the whole loop on the real
// services: a DropStarted in the outbox, the relay publishing it to Kafka,
// the notifier (group consumer) writing notifications and their batch events,
// the relay publishing those, and the live hub (tail consumer) handing each
// notification to the subscribed follower.
func TestOnlineFollowersSeeNotificationsLive(t *testing.T) {
	url := testenv.Database(t)
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(); err != nil {
		t.Fatal(err)
	}
	brokers, topic := testenv.Kafka(t)
	db.Topic = topic
	log := quietLog()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}

	hub := live.NewHub(log, live.Options{})
	tail, err := events.NewTailConsumer(brokers, topic, hub.Handle, log)
	if err != nil {
		t.Fatal(err)
	}
	group, err := events.NewGroupConsumer(brokers, "notifier-"+topic, topic, New(db, log).Handle, log)
	if err != nil {
		t.Fatal(err)
	}
	producer, err := events.NewProducer(brokers, log)
	if err != nil {
		t.Fatal(err)
	}
	relay := events.NewRelay(db, url, producer, topic, log)
	run("tail consumer", tail.Run)
	run("notifier consumer", group.Run)
	run("relay", relay.Run)
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		tail.Close()
		group.Close()
		producer.Close()
		hub.Close()
	})

	creatorID, dropID := seedCreatorWithFollowers(t, db, 2500)
	fans, err := db.Followers(ctx, creatorID, store.PageArgs{Limit: 3})
	if err != nil || len(fans.Items) != 3 {
		t.Fatalf("read followers: %v", err)
	}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	subs := map[int64]*live.Sub[*domain.Notification]{}
	for _, u := range fans.Items {
		if subs[u.ID], err = hub.SubscribeUser(subCtx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	stranger, err := hub.SubscribeUser(subCtx, 1) // the creator's own user follows no one
	if err != nil {
		t.Fatal(err)
	}

	started := time.Now()
	ev, err := store.NewEvent(domain.EventDropStarted, fmt.Sprintf("drop:%d", dropID), domain.DropPayload{DropID: dropID, CreatorID: creatorID, Status: domain.DropLive}, started)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.EnqueueEvents(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for userID, s := range subs {
		select {
		case n := <-s.C():
			if n.UserID != userID || n.DropID != dropID || n.CreatorID != creatorID || n.Kind != domain.NotificationDropStarted || n.ID == 0 {
				t.Fatalf("user %d got %+v", userID, n)
			}
			got, err := db.NotificationsByIDs(ctx, []int64{n.ID})
			if err != nil || len(got) != 1 || got[0].UserID != userID || !got[0].CreatedAt.Equal(n.CreatedAt) {
				t.Fatalf("notification %d as stored: %+v, %v", n.ID, got, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("user %d got no notification within 60s", userID)
		}
	}
	t.Logf("outbox to online followers of 2,500: %v", time.Since(started))
	select {
	case n := <-stranger.C():
		t.Fatalf("a user following no one got %+v", n)
	case <-time.After(100 * time.Millisecond):
	}
	if got := count(t, db, dropID, domain.NotificationDropStarted); got.Notifications != 2500 {
		t.Fatalf("%+v, want 2500 notifications", got)
	}
}
