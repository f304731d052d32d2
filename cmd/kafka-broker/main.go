// Command kafka-broker runs a Kafka-protocol broker (franz-go's kfake) as its
// own process, for tests and CI on machines where Apache Kafka cannot be
// installed. Clients, confluent-kafka-go included, reach it over TCP like any
// one-broker cluster. Topics are created on first use.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"livedrops/internal/devstack"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); err != nil {
		log.Error("kafka-broker stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	flags := flag.NewFlagSet("kafka-broker", flag.ContinueOnError)
	addr := flags.String("addr", envOr("KAFKA_BROKER_ADDR", "127.0.0.1:9092"), "listen address (env KAFKA_BROKER_ADDR)")
	partitions := flags.Int("partitions", 6, "partitions of a topic created on first use")
	topics := flags.String("topics", "", "comma-separated topics to create at start")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *partitions < 1 {
		return fmt.Errorf("-partitions must be at least 1, got %d", *partitions)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var seed []string
	for _, t := range strings.Split(*topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			seed = append(seed, t)
		}
	}
	cluster, err := devstack.NewKafkaCluster(*addr, *partitions, log, seed...)
	if err != nil {
		return err
	}
	log.Info("kafka-broker listening", "addr", cluster.ListenAddrs()[0], "partitions", *partitions, "topics", seed)
	<-ctx.Done()
	log.Info("kafka-broker shutting down")
	cluster.Close()
	return nil
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
