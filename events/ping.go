package events

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Ping asks the cluster for its metadata through the producer's connection,
// for readiness probes: it fails when no broker answers.
func (p *Producer) Ping(ctx context.Context) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return errors.New("events: producer closed")
	}
	timeout := 2 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if _, err := p.kp.GetMetadata(nil, false, int(timeout/time.Millisecond)); err != nil {
		return fmt.Errorf("events: metadata from %s: %w", p.brokers, err)
	}
	return nil
}
