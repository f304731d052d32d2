package orders

// RedisFailures returns how many Redis calls of the gate's link failed, so a
// test can tell a gate that was bypassed under load from one that miscounted.
func RedisFailures(g *Gate) int64 {
	if g == nil || g.link == nil {
		return 0
	}
	return g.link.failures.Load()
}
