package orders

import "context"

// RedisFailures returns how many Redis calls of the gate's link failed, so a
// test can tell a gate that was bypassed under load from one that miscounted.
func RedisFailures(g *Gate) int64 {
	if g == nil || g.link == nil {
		return 0
	}
	return g.link.failures.Load()
}

// Cooldown is how long a gate leaves Redis alone after a failed call.
const Cooldown = cooldown

// KnowsKey reports whether the gate's known keys of the drop hold the buyer's key.
func KnowsKey(ctx context.Context, g *Gate, dropID, buyerID int64, key string) (bool, error) {
	return g.link.rdb.HExists(ctx, g.KeysKey(dropID), keyField(buyerID, key)).Result()
}
