package events

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// EnsureTopic creates topic with the given number of partitions if it does
// not exist yet; an existing topic is left as it is, since changing its
// partition count would move keys and break per-drop order. The replication
// factor is the cluster's default.
func EnsureTopic(ctx context.Context, brokers, topic string, partitions int) error {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{
		"bootstrap.servers": brokers,
		"client.id":         "livedrops",
		// The admin client cannot forward its logs to slog; keep stderr to warnings.
		"log_level": 4,
	})
	if err != nil {
		return fmt.Errorf("events: create admin client for %s: %w", brokers, err)
	}
	defer admin.Close()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	// ReplicationFactor 0 asks for the broker's default.
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: partitions}})
	if err != nil {
		return fmt.Errorf("events: create topic %s: %w", topic, err)
	}
	for _, r := range res {
		if c := r.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrTopicAlreadyExists {
			return fmt.Errorf("events: create topic %s: %w", topic, r.Error)
		}
	}
	return nil
}
