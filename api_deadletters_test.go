package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"livedrops/domain"
)

// A poison outbox row and a message no consumer can read stop nothing: the
// relay moves the row to dead_letters and publishes the drop's later events,
// and each of the instance's consumers keeps the message there and goes on.
func TestAPIPoisonEventsStopNothing(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	ctx := context.Background()
	sale := newLiveSale(t, app, 5, 1)
	buyers := provisionBuyers(t, app, 1)
	key := "drop:" + strconv.FormatInt(mustKey(t, sale.dropID), 10)
	topic := app.Config.KafkaTopic

	if _, err := app.DB.ExecContext(ctx, `INSERT INTO outbox (topic, key, type, payload)
		VALUES ($1, $2, 'StockChanged', '{"not": "an envelope"}')`, app.DB.Topic, key); err != nil {
		t.Fatal(err)
	}
	// An envelope without id or type: every consumer refuses it.
	if err := app.App.producer.Publish(ctx, topic, []domain.Event{{Key: key, Payload: json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	answer, err := sale.place(buyers[0].token, "after-poison", 1)
	if err == nil {
		var a saleAnswer
		if a, err = readAnswer(answer); err == nil && a.code != "" {
			err = fmt.Errorf("placeOrder answered %s", a.code)
		}
	}
	if err != nil {
		t.Fatal(err)
	}

	eventually(t, 20*time.Second, func() string {
		var published, relay, consumers int
		err := app.DB.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM outbox WHERE key = $1 AND type = 'OrderPlaced' AND published_at IS NOT NULL),
			(SELECT count(*) FROM dead_letters WHERE source = 'relay' AND key = $1),
			(SELECT count(DISTINCT source) FROM dead_letters WHERE source <> 'relay' AND topic = $2 AND key = $1)`,
			key, topic).Scan(&published, &relay, &consumers)
		if err != nil {
			t.Fatal(err)
		}
		if n := unpublishedEvents(t, app); published != 1 || relay != 1 || consumers != 3 || n != 0 {
			return fmt.Sprintf("OrderPlaced published %d, relay dead letters %d, consumers that kept the message %d (want tail, notifier, cache), unpublished %d",
				published, relay, consumers, n)
		}
		return ""
	})
}
