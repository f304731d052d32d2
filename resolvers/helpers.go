package resolvers

import (
	"context"
	"errors"

	"livedrops/domain"
	"livedrops/graph/model"
	"livedrops/loaders"
	"livedrops/store"
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

// node loads any object by global id; unknown ids, and orders and
// notifications the viewer may not see, give null.
func (r *Resolver) node(ctx context.Context, gid string) (domain.Node, error) {
	typ, id, err := domain.ParseGlobalID(gid)
	if err != nil {
		return nil, err
	}
	l := loaders.For(ctx)
	switch typ {
	case domain.TypeUser:
		return asNode(l.Users.Load(ctx, id)())
	case domain.TypeCreator:
		return asNode(l.Creators.Load(ctx, id)())
	case domain.TypeProduct:
		return asNode(l.Products.Load(ctx, id)())
	case domain.TypeDrop:
		return asNode(l.Drops.Load(ctx, id)())
	case domain.TypeMedia:
		return asNode(l.Media.Load(ctx, id)())
	case domain.TypeOrder:
		v := domain.ViewerFrom(ctx)
		if v == nil {
			return nil, nil
		}
		o, err := r.OrderService.OrderFor(ctx, v.UserID, id)
		if domain.ErrorCode(err) == domain.Forbidden || domain.ErrorCode(err) == domain.NotFound {
			return nil, nil
		}
		return asNode(o, err)
	case domain.TypeNotification:
		v := domain.ViewerFrom(ctx)
		if v == nil {
			return nil, nil
		}
		n, err := l.Notifications.Load(ctx, id)()
		if err != nil || n == nil || n.UserID != v.UserID {
			return nil, err
		}
		return *n, nil
	}
	return nil, nil
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

func creatorConnection(page store.Page[domain.Creator]) *model.CreatorConnection {
	c := &model.CreatorConnection{}
	c.Edges, c.PageInfo = connect(page, func(cur string, n *domain.Creator) *model.CreatorEdge {
		return &model.CreatorEdge{Cursor: cur, Node: n}
	})
	return c
}

func dropConnection(page store.Page[domain.Drop]) *model.DropConnection {
	c := &model.DropConnection{}
	c.Edges, c.PageInfo = connect(page, func(cur string, n *domain.Drop) *model.DropEdge { return &model.DropEdge{Cursor: cur, Node: n} })
	return c
}
