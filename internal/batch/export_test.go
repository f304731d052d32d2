package batch

// Waiting returns how many calls of key wait for a batch.
func (r *Runner[K, In, Out]) Waiting(key K) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queues[key])
}
