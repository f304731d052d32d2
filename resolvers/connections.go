package resolvers

import (
	"context"

	"livedrops/domain"
	"livedrops/graph/model"
	"livedrops/loaders"
	"livedrops/store"
)

// pageArgs validates a connection's arguments (BAD_USER_INPUT when out of bounds).
func pageArgs(first *int, after *string, last *int, before *string) (store.PageArgs, error) {
	return store.NewPageArgs(first, last, after, before)
}

// loadPage validates a nested connection's arguments and loads parent's page
// through its loader, batched with the other parents of the list.
func loadPage[T any, F comparable](ctx context.Context, pages *loaders.PageLoader[T, F], parent int64, filter F,
	first *int, after *string, last *int, before *string) (store.Page[T], error) {
	p, err := pageArgs(first, after, last, before)
	if err != nil {
		return store.Page[T]{}, err
	}
	return pages.Load(ctx, parent, p, filter)
}

// everyStatusOr is the drop filter of an optional status ("" for every status).
func everyStatusOr(status *domain.DropStatus) domain.DropStatus {
	if status == nil {
		return ""
	}
	return *status
}

// connect turns a store page into a connection's edges and page info.
func connect[T any, E any](p store.Page[T], edge func(cursor string, node *T) E) ([]E, *model.PageInfo) {
	edges := make([]E, len(p.Items))
	for i := range p.Items {
		edges[i] = edge(p.Cursors[i], &p.Items[i])
	}
	info := &model.PageInfo{HasNextPage: p.HasNext, HasPreviousPage: p.HasPrev}
	if n := len(p.Cursors); n > 0 {
		info.StartCursor, info.EndCursor = &p.Cursors[0], &p.Cursors[n-1]
	}
	return edges, info
}

// The connections of each node type, from a page read (or its error).

func creatorConnection(page store.Page[domain.Creator], err error) (*model.CreatorConnection, error) {
	if err != nil {
		return nil, err
	}
	c := &model.CreatorConnection{}
	c.Edges, c.PageInfo = connect(page, func(cur string, n *domain.Creator) *model.CreatorEdge {
		return &model.CreatorEdge{Cursor: cur, Node: n}
	})
	return c, nil
}

func dropConnection(page store.Page[domain.Drop], err error) (*model.DropConnection, error) {
	if err != nil {
		return nil, err
	}
	c := &model.DropConnection{}
	c.Edges, c.PageInfo = connect(page, func(cur string, n *domain.Drop) *model.DropEdge { return &model.DropEdge{Cursor: cur, Node: n} })
	return c, nil
}

func productConnection(page store.Page[domain.Product], err error) (*model.ProductConnection, error) {
	if err != nil {
		return nil, err
	}
	c := &model.ProductConnection{}
	c.Edges, c.PageInfo = connect(page, func(cur string, n *domain.Product) *model.ProductEdge {
		return &model.ProductEdge{Cursor: cur, Node: n}
	})
	return c, nil
}

func userConnection(page store.Page[domain.User], err error) (*model.UserConnection, error) {
	if err != nil {
		return nil, err
	}
	c := &model.UserConnection{}
	c.Edges, c.PageInfo = connect(page, func(cur string, n *domain.User) *model.UserEdge { return &model.UserEdge{Cursor: cur, Node: n} })
	return c, nil
}

func orderConnection(page store.Page[domain.Order], err error) (*model.OrderConnection, error) {
	if err != nil {
		return nil, err
	}
	c := &model.OrderConnection{}
	c.Edges, c.PageInfo = connect(page, func(cur string, n *domain.Order) *model.OrderEdge { return &model.OrderEdge{Cursor: cur, Node: n} })
	return c, nil
}

func notificationConnection(page store.Page[domain.Notification], err error) (*model.NotificationConnection, error) {
	if err != nil {
		return nil, err
	}
	c := &model.NotificationConnection{}
	c.Edges, c.PageInfo = connect(page, func(cur string, n *domain.Notification) *model.NotificationEdge {
		return &model.NotificationEdge{Cursor: cur, Node: n}
	})
	return c, nil
}
