package devstack

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// NewKafkaCluster starts a one-broker Kafka-protocol cluster (franz-go's kfake)
// listening on addr ("127.0.0.1:0" for any free port). Topics are created on
// first use with the given number of partitions, and the named topics exist
// from the start. Close the cluster to stop it.
func NewKafkaCluster(addr string, partitions int, log *slog.Logger, topics ...string) (*kfake.Cluster, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("kafka: parse listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("kafka: parse listen port %q: %w", portText, err)
	}
	opts := []kfake.Opt{
		// One port means one broker: clients are sent back to the address they dialled.
		kfake.Ports(port),
		// kfake always asks for 127.0.0.1; honour the host we were given instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(partitions),
		kfake.ClusterID("livedrops-dev"),
		kfake.WithLogger(kafkaLog{log}),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(partitions), topics...))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start broker on %s: %w", addr, err)
	}
	return cluster, nil
}

// kafkaLog passes the broker's warnings and errors to slog; its request
// chatter stays quiet.
type kafkaLog struct{ log *slog.Logger }

func (l kafkaLog) Logf(level kfake.LogLevel, format string, args ...any) {
	if l.log == nil {
		return
	}
	switch level {
	case kfake.LogLevelError:
		l.log.Error("kafka broker: " + fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		l.log.Warn("kafka broker: " + fmt.Sprintf(format, args...))
	}
}
