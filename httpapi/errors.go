package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"livedrops/domain"
)

// presenter turns every error gqlgen reports into what the client sees.
type presenter struct{ log *slog.Logger }

func (p presenter) present(ctx context.Context, err error) *gqlerror.Error {
	gqlErr, _ := errors.AsType[*gqlerror.Error](err)
	var path ast.Path
	var locations []gqlerror.Location
	if gqlErr != nil {
		path, locations = gqlErr.Path, gqlErr.Locations
	}
	if path == nil {
		path = graphql.GetPath(ctx)
	}

	if de, ok := errors.AsType[*domain.Error](err); ok {
		ext := make(map[string]any, len(de.Extensions)+2)
		maps.Copy(ext, de.Extensions)
		ext["code"] = de.Code
		if de.Field != "" {
			ext["field"] = de.Field
		}
		if de.Code == domain.Internal {
			p.log.ErrorContext(ctx, "internal error", "error", err, "path", path.String())
		}
		return &gqlerror.Error{Message: de.Message, Path: path, Locations: locations, Extensions: ext}
	}

	fc := graphql.GetFieldContext(ctx)
	if gqlErr != nil {
		code, _ := gqlErr.Extensions["code"].(string)
		switch {
		case fc == nil:
			// A request error (parse, validation, variables, limits, persisted
			// queries): gqlgen and this package write those for clients.
			if code == "" || isCoercionError(gqlErr) {
				setCode(gqlErr, domain.BadUserInput)
			}
			return gqlErr
		case code != "":
			// Coded on purpose (a recovered panic is INTERNAL already).
			if gqlErr.Path == nil {
				gqlErr.Path = path
			}
			return gqlErr
		case belowField(gqlErr.Path, fc):
			// Reported under the field, in its arguments: the value did not
			// fit the argument's type (a bad Time, an unknown enum value).
			setCode(gqlErr, domain.BadUserInput)
			return gqlErr
		}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// The client left (a hash it queued gave up): nothing went wrong here.
		p.log.DebugContext(ctx, "request cancelled", "error", err, "path", path.String())
	} else {
		p.log.ErrorContext(ctx, "internal error", "error", err, "path", path.String())
	}
	return &gqlerror.Error{
		Message:    "internal error",
		Path:       path,
		Locations:  locations,
		Extensions: map[string]any{"code": domain.Internal},
	}
}

// isCoercionError tells a variable or argument value of the wrong type from
// the other validation failures: the client sent bad input, not a bad query.
func isCoercionError(e *gqlerror.Error) bool {
	if e.Rule == "ValuesOfCorrectType" {
		return true
	}
	// gqlparser reports variable values under the path ["variable", name].
	return len(e.Path) > 0 && e.Path[0] == ast.PathName("variable")
}

// belowField reports whether path lies strictly under the field of fc:
// gqlgen reports argument values there, and resolver errors at the field.
func belowField(path ast.Path, fc *graphql.FieldContext) bool {
	fieldPath := fc.Path()
	if len(path) <= len(fieldPath) {
		return false
	}
	for i, el := range fieldPath {
		if path[i] != el {
			return false
		}
	}
	return true
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

// recoverer turns a panic in a resolver into an INTERNAL error for the client
// and a log line with the stack for us; the connection lives on.
type recoverer struct{ log *slog.Logger }

func (r recoverer) recover(ctx context.Context, p any) error {
	r.log.ErrorContext(ctx, "panic serving graphql",
		"panic", fmt.Sprint(p), "path", graphql.GetPath(ctx).String(), "stack", string(debug.Stack()))
	// A *gqlerror.Error, because the WebSocket transport sends the message of
	// anything else as it is.
	return &gqlerror.Error{
		Message:    "internal error",
		Extensions: map[string]any{"code": domain.Internal},
	}
}
