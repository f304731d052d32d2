package resolvers

import (
	"livedrops/graph/model"
	"livedrops/store"
)

// pageArgs validates a connection's arguments (BAD_USER_INPUT when out of bounds).
func pageArgs(first *int, after *string, last *int, before *string) (store.PageArgs, error) {
	return store.NewPageArgs(first, last, after, before)
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
