package resolvers

import (
	"livedrops/domain"
	"livedrops/graph"
	"livedrops/store"
)

// Complexity prices each connection by the page it asks for, so a nest of
// connections costs the product of its page sizes and is refused before it runs.
func Complexity() graph.ComplexityRoot {
	var c graph.ComplexityRoot
	c.Query.Creators = connectionCost
	c.Query.Drops = statusConnectionCost
	c.Query.LiveDrops = func(child int, first *int, after *string) int { return connectionCost(child, first, after, nil, nil) }
	c.Query.Nodes = func(child int, ids []string) int { return 1 + child*max(len(ids), 1) }
	c.Creator.Followers = connectionCost
	c.Creator.Products = connectionCost
	c.Creator.Drops = statusConnectionCost
	c.Product.Drops = connectionCost
	c.User.Following = connectionCost
	c.User.Orders = connectionCost
	c.User.Notifications = func(child int, _ *bool, first *int, after *string, last *int, before *string) int {
		return connectionCost(child, first, after, last, before)
	}
	return c
}

func connectionCost(child int, first *int, _ *string, last *int, _ *string) int {
	n := store.DefaultPageSize
	switch {
	case first != nil:
		n = *first
	case last != nil:
		n = *last
	}
	// Out-of-range sizes are refused by the resolver; price them at the cap.
	n = min(max(n, 1), store.MaxPageSize)
	return 1 + child*n
}

func statusConnectionCost(child int, _ *domain.DropStatus, first *int, after *string, last *int, before *string) int {
	return connectionCost(child, first, after, last, before)
}
