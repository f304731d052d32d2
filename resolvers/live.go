package resolvers

import (
	"context"
	"errors"

	"livedrops/domain"
	"livedrops/live"
	"livedrops/store"
)

const (
	// maxWatchedCreators caps the creators of one dropEvents subscription:
	// each is a route in the hub. Without ids, the viewer's most recent
	// follows up to this many are watched.
	maxWatchedCreators = 1000
	// maxMarkRead caps the ids of one markNotificationsRead.
	maxMarkRead = 1000
)

// idArg decodes the global id given as the argument field, which must be of
// type typ; a bad one is BAD_USER_INPUT naming the argument.
func idArg(gid, typ, field string) (int64, error) {
	id, err := domain.ParseID(gid, typ)
	var e *domain.Error
	if errors.As(err, &e) {
		named := *e
		named.Field = field
		return 0, &named
	}
	return id, err
}

// idArgs decodes a list argument of global ids of type typ, at most max of
// them; a nil list stays nil (callers read it as "all").
func idArgs(gids []string, typ, field string, max int) ([]int64, error) {
	if gids == nil {
		return nil, nil
	}
	if len(gids) > max {
		return nil, domain.InvalidInput(field, "at most %d ids at once", max)
	}
	ids := make([]int64, len(gids))
	for i, gid := range gids {
		id, err := idArg(gid, typ, field)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// channel hands a hub subscription to gqlgen, which reads its channel until
// the hub closes it.
func channel[T any](s *live.Sub[T], err error) (<-chan T, error) {
	if err != nil {
		return nil, err
	}
	return s.C(), nil
}

// watchedCreators resolves dropEvents' creatorIds: the given creators, or
// without ids the creators the viewer follows now (a signed-in viewer is
// needed then).
func (r *Resolver) watchedCreators(ctx context.Context, gids []string) ([]int64, error) {
	if gids != nil {
		return idArgs(gids, domain.TypeCreator, "creatorIds", maxWatchedCreators)
	}
	v, err := domain.RequireViewer(ctx)
	if err != nil {
		return nil, err
	}
	page, err := r.DB.Following(ctx, v.UserID, store.PageArgs{Limit: maxWatchedCreators})
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(page.Items))
	for i, c := range page.Items {
		ids[i] = c.ID
	}
	return ids, nil
}

// requireBuyer answers NOT_FOUND for an unknown order and FORBIDDEN for an
// order that is not the user's own.
func (r *Resolver) requireBuyer(ctx context.Context, userID, orderID int64) error {
	o, err := r.OrderService.OrderFor(ctx, userID, orderID)
	if err != nil {
		return err
	}
	if o.BuyerID != userID {
		return domain.Errorf(domain.Forbidden, "only the buyer can follow this order")
	}
	return nil
}
