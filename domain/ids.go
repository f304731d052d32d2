package domain

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Node types that have global ids.
const (
	TypeUser         = "User"
	TypeCreator      = "Creator"
	TypeProduct      = "Product"
	TypeMedia        = "Media"
	TypeDrop         = "Drop"
	TypeOrder        = "Order"
	TypeNotification = "Notification"
)

var nodeTypes = map[string]bool{
	TypeUser: true, TypeCreator: true, TypeProduct: true, TypeMedia: true,
	TypeDrop: true, TypeOrder: true, TypeNotification: true,
}

// GlobalID returns the opaque Relay id of the object of type typ with key id.
func GlobalID(typ string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(typ + ":" + strconv.FormatInt(id, 10)))
}

// ParseGlobalID decodes any well-formed global id into its type and key.
func ParseGlobalID(gid string) (typ string, id int64, err error) {
	bad := InvalidInput("id", "%q is not a valid id", truncate(gid, 64))
	if gid == "" || len(gid) > 64 {
		return "", 0, bad
	}
	raw, decErr := base64.RawURLEncoding.DecodeString(gid)
	if decErr != nil {
		return "", 0, bad
	}
	typ, num, ok := strings.Cut(string(raw), ":")
	if !ok || !nodeTypes[typ] {
		return "", 0, bad
	}
	id, convErr := strconv.ParseInt(num, 10, 64)
	if convErr != nil || id <= 0 {
		return "", 0, bad
	}
	// Only the exact encoding names an object: base64 decoding forgives line
	// breaks and stray bits, and numbers may carry signs or leading zeros.
	if GlobalID(typ, id) != gid {
		return "", 0, bad
	}
	return typ, id, nil
}

// ParseID decodes a global id that must be of type want; a well-formed id of
// another type is refused, never resolved to another object.
func ParseID(gid, want string) (int64, error) {
	typ, id, err := ParseGlobalID(gid)
	if err != nil {
		return 0, err
	}
	if typ != want {
		return 0, InvalidInput("id", "id %q is a %s id, not a %s id", truncate(gid, 64), typ, want)
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
