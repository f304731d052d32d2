package resolvers

import (
	"context"
	"errors"

	"github.com/graph-gophers/dataloader/v7"

	"livedrops/domain"
	"livedrops/loaders"
	"livedrops/orders"
)

// maxNodes caps nodes(ids:).
const maxNodes = 100

// viewerAnd returns the signed-in viewer and the key of gid, which must be of type typ.
func viewerAnd(ctx context.Context, gid, typ string) (*domain.Viewer, int64, error) {
	v, err := domain.RequireViewer(ctx)
	if err != nil {
		return nil, 0, err
	}
	id, err := domain.ParseID(gid, typ)
	if err != nil {
		return nil, 0, err
	}
	return v, id, nil
}

// node starts loading any object by global id and returns the wait for it,
// so nodes(ids:) starts every load before waiting and the loaders batch
// them. Unknown ids, and orders and notifications the viewer may not see,
// give null.
func (r *Resolver) node(ctx context.Context, gid string) func() (domain.Node, error) {
	typ, id, err := domain.ParseGlobalID(gid)
	if err != nil {
		return func() (domain.Node, error) { return nil, err }
	}
	l := loaders.For(ctx)
	switch typ {
	case domain.TypeUser:
		return nodeOf(l.Users.Load(ctx, id))
	case domain.TypeCreator:
		return nodeOf(l.Creators.Load(ctx, id))
	case domain.TypeProduct:
		return nodeOf(l.Products.Load(ctx, id))
	case domain.TypeDrop:
		return nodeOf(l.Drops.Load(ctx, id))
	case domain.TypeMedia:
		return nodeOf(l.Media.Load(ctx, id))
	case domain.TypeOrder:
		v := domain.ViewerFrom(ctx)
		if v == nil {
			return func() (domain.Node, error) { return nil, nil }
		}
		load := l.Orders.Load(ctx, id)
		return func() (domain.Node, error) {
			o, err := load()
			if err != nil || o == nil || !orders.MaySee(v.UserID, o.BuyerID, o.SellerUserID) {
				return nil, err
			}
			return o.Order, nil
		}
	case domain.TypeNotification:
		load := l.Notifications.Load(ctx, id)
		return func() (domain.Node, error) {
			n, err := load()
			if v := domain.ViewerFrom(ctx); err != nil || n == nil || v == nil || n.UserID != v.UserID {
				return nil, err
			}
			return *n, nil
		}
	}
	return func() (domain.Node, error) { return nil, nil }
}

// nodeOf waits for a loader's result as a Node.
func nodeOf[T domain.Node](load dataloader.Thunk[*T]) func() (domain.Node, error) {
	return func() (domain.Node, error) { return asNode(load()) }
}

// asNode returns v as a Node, or a nil interface (never a typed nil) when absent.
func asNode[T domain.Node](v *T, err error) (domain.Node, error) {
	if err != nil || v == nil {
		return nil, err
	}
	return *v, nil
}

// nilIfNotFound turns NOT_FOUND into a null result.
func nilIfNotFound[T any](v *T, err error) (*T, error) {
	var e *domain.Error
	if errors.As(err, &e) && e.Code == domain.NotFound {
		return nil, nil
	}
	return v, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
