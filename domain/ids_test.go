package domain

import (
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestGlobalIDRoundTrip(t *testing.T) {
	for typ := range nodeTypes {
		for _, id := range []int64{1, 42, math.MaxInt64} {
			gid := GlobalID(typ, id)
			got, err := ParseID(gid, typ)
			if err != nil || got != id {
				t.Fatalf("ParseID(GlobalID(%s, %d)) = %d, %v", typ, id, got, err)
			}
		}
	}
}

func TestParseIDRejects(t *testing.T) {
	enc := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }
	tests := map[string]string{
		"empty":            "",
		"too long":         strings.Repeat("A", 65),
		"not base64":       "***",
		"padded":           enc("User:1") + "=",
		"no colon":         enc("User1"),
		"unknown type":     enc("Admin:1"),
		"type in lower":    enc("user:1"),
		"zero":             enc("User:0"),
		"negative":         enc("User:-1"),
		"leading zero":     enc("User:01"),
		"plus sign":        enc("User:+1"),
		"overflow":         enc("User:9223372036854775808"),
		"trailing space":   enc("User:1 "),
		"other type":       GlobalID(TypeCreator, 1),
		"line break":       enc("User:1")[:3] + "\n" + enc("User:1")[3:],
		"std alphabet":     base64.RawStdEncoding.EncodeToString([]byte("Drop:1>?")),
		"second separator": enc("User:1:2"),
	}
	for name, gid := range tests {
		t.Run(name, func(t *testing.T) {
			id, err := ParseID(gid, TypeUser)
			var de *Error
			if !errors.As(err, &de) || de.Code != BadUserInput || de.Field != "id" {
				t.Fatalf("ParseID(%q) = %d, %v; want BAD_USER_INPUT on id", gid, id, err)
			}
		})
	}
}

// FuzzParseGlobalID checks that any client string is either refused with a
// BAD_USER_INPUT on id, or is exactly the global id of one object, so one
// object never answers to two ids.
func FuzzParseGlobalID(f *testing.F) {
	f.Add(GlobalID(TypeDrop, 7))
	f.Add(GlobalID(TypeUser, math.MaxInt64))
	f.Add(GlobalID(TypeOrder, 12) + "\n")
	f.Add("VXNlcjox")
	f.Add("")
	f.Fuzz(func(t *testing.T, gid string) {
		typ, id, err := ParseGlobalID(gid)
		if err != nil {
			var de *Error
			if !errors.As(err, &de) || de.Code != BadUserInput || de.Field != "id" {
				t.Fatalf("ParseGlobalID(%q) error %v is not BAD_USER_INPUT on id", gid, err)
			}
			if len(de.Message) > 320 { // 64 bytes, each at worst escaped as \xNN
				t.Fatalf("error message echoes %d bytes of input", len(de.Message))
			}
			return
		}
		if !nodeTypes[typ] || id <= 0 {
			t.Fatalf("ParseGlobalID(%q) = %q, %d", gid, typ, id)
		}
		if canon := GlobalID(typ, id); canon != gid {
			t.Fatalf("ParseGlobalID accepted %q, which is not the canonical %q", gid, canon)
		}
	})
}
