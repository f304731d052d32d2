package accounts

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"livedrops/auth"
	"livedrops/domain"
	"livedrops/store"
	"livedrops/store/storetest"
)

// newService returns a Service on a fresh, migrated database.
func newService(t *testing.T) (*Service, *store.DB, *auth.Tokens) {
	t.Helper()
	db := storetest.Open(t)
	tokens := auth.NewTokens([]byte("accounts-test-secret"), time.Hour, nil)
	return New(db, tokens, nil, nil), db, tokens
}

func wantError(t *testing.T, err error, code, field, msg string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != code || de.Field != field || (msg != "" && de.Message != msg) {
		t.Fatalf("err = %#v; want %s on %q %q", err, code, field, msg)
	}
}

func TestSignUpValidation(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	const pw = "long enough"
	tests := []struct {
		name                          string
		handle, password, displayName string
		wantField                     string // "" = accepted
	}{
		{"shortest handle", "abc", pw, "Abc", ""},
		{"longest handle", strings.Repeat("h", 30), pw, "H", ""},
		{"underscores and digits", "Some_One_42", pw, "Some One", ""},
		{"shortest password", "pw_min", "12345678", "Min", ""},
		{"longest password", "pw_max", strings.Repeat("p", 128), "Max", ""},
		{"multibyte password", "pw_utf8", "pässwörd", "Utf8", ""},
		{"display name trimmed to fit", "trimmed", pw, "  " + strings.Repeat("é", 80) + "\n ", ""},
		{"handle too short", "ab", pw, "Ab", "handle"},
		{"handle too long", strings.Repeat("h", 31), pw, "H", "handle"},
		{"handle with dash", "bad-handle", pw, "Bad", "handle"},
		{"handle with space", "bad handle", pw, "Bad", "handle"},
		{"handle with accent", "héllo", pw, "Hello", "handle"},
		{"handle empty", "", pw, "Empty", "handle"},
		{"password too short", "shortpw", "1234567", "Short", "password"},
		{"password too long", "longpw", strings.Repeat("p", 129), "Long", "password"},
		{"password empty", "nopw", "", "No", "password"},
		{"display name empty", "noname", pw, "", "displayName"},
		{"display name blank", "blank", pw, " \t ", "displayName"},
		{"display name too long", "longname", pw, strings.Repeat("n", 81), "displayName"},
		{"display name two lines", "twolines", pw, "one\ntwo", "displayName"},
		{"display name not utf-8", "badutf", pw, "bad \xff name", "displayName"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.SignUp(ctx, tc.handle, tc.password, tc.displayName)
			if tc.wantField != "" {
				wantError(t, err, domain.BadUserInput, tc.wantField, "")
				return
			}
			if err != nil {
				t.Fatalf("SignUp: %v", err)
			}
			if res.User.Handle != tc.handle || res.User.DisplayName != strings.TrimSpace(tc.displayName) || res.Token == "" {
				t.Fatalf("SignUp = %+v", res)
			}
		})
	}
}

func TestSignUpAndLogIn(t *testing.T) {
	s, db, tokens := newService(t)
	ctx := context.Background()

	res, err := s.SignUp(ctx, "Alice", "correct horse", " Alice ")
	if err != nil {
		t.Fatal(err)
	}
	if res.User.ID == 0 || res.User.DisplayName != "Alice" || res.User.PasswordHash != "" || !res.ExpiresAt.After(time.Now()) {
		t.Fatalf("SignUp = %+v", res)
	}
	v, err := tokens.Parse(context.Background(), res.Token)
	if err != nil || v.UserID != res.User.ID || v.Handle != "Alice" {
		t.Fatalf("token says %+v, %v", v, err)
	}
	stored, err := db.UserByHandle(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
		t.Fatalf("stored password hash %q", stored.PasswordHash)
	}

	_, err = s.SignUp(ctx, "ALICE", "another password", "Impostor")
	wantError(t, err, domain.BadUserInput, "handle", "that handle is taken")

	in, err := s.LogIn(ctx, "aLiCe", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if in.User.ID != res.User.ID || in.User.PasswordHash != "" {
		t.Fatalf("LogIn = %+v", in)
	}
	if v, err := tokens.Parse(context.Background(), in.Token); err != nil || v.UserID != res.User.ID {
		t.Fatalf("log-in token says %+v, %v", v, err)
	}

	for _, tc := range []struct{ name, handle, password string }{
		{"wrong password", "alice", "correct horsf"},
		{"unknown handle", "bob", "correct horse"},
		{"malformed handle", "no such-handle", "correct horse"},
		{"short password", "alice", "short"},
		{"huge password", "alice", strings.Repeat("x", 10000)},
	} {
		_, err := s.LogIn(ctx, tc.handle, tc.password)
		wantError(t, err, domain.Unauthenticated, "", "wrong handle or password")
	}
}

// TestLogInTimingHidesUnknownHandles checks that a log-in with an unknown
// handle still pays for a password check, so its duration tells nothing.
func TestLogInTimingHidesUnknownHandles(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	if _, err := s.SignUp(ctx, "carol", "carols password", "Carol"); err != nil {
		t.Fatal(err)
	}
	median := func(handle string) time.Duration {
		var d []time.Duration
		for range 5 {
			start := time.Now()
			if _, err := s.LogIn(ctx, handle, "wrong password"); domain.ErrorCode(err) != domain.Unauthenticated {
				t.Fatalf("LogIn(%s): %v", handle, err)
			}
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	known, unknown := median("carol"), median("nobody")
	if unknown < known/3 {
		t.Fatalf("unknown handle answered in %v, known in %v: the difference tells who has an account", unknown, known)
	}
}

func TestBecomeCreator(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	tests := []struct {
		name, displayName, bio string
		wantField              string
	}{
		{"display name empty", "", "bio", "displayName"},
		{"display name blank", "   ", "bio", "displayName"},
		{"display name too long", strings.Repeat("d", 81), "", "displayName"},
		{"bio too long", "Maker", strings.Repeat("b", 501), "bio"},
		{"bio with escape character", "Maker", "hi \x1b[31m", "bio"},
		{"bio not utf-8", "Maker", "\xff", "bio"},
	}
	u, err := s.SignUp(ctx, "maker", "maker password", "Maker")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.BecomeCreator(ctx, u.User.ID, tc.displayName, tc.bio)
			wantError(t, err, domain.BadUserInput, tc.wantField, "")
		})
	}

	_, err = s.BecomeCreator(ctx, 0, "Nobody", "")
	wantError(t, err, domain.Unauthenticated, "", "")

	bio := strings.Repeat("b", 497) + "\n\tb"
	c, err := s.BecomeCreator(ctx, u.User.ID, " The Maker ", " "+bio+" ")
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != u.User.ID || c.Handle != "maker" || c.DisplayName != "The Maker" || c.Bio != bio {
		t.Fatalf("BecomeCreator = %+v", c)
	}
	_, err = s.BecomeCreator(ctx, u.User.ID, "Again", "")
	wantError(t, err, domain.Conflict, "", "you are already a creator")
}

func TestFollow(t *testing.T) {
	s, db, _ := newService(t)
	ctx := context.Background()
	star, err := db.CreateUser(ctx, "star", "Star", "dummy-hash") // no argon2 needed here
	if err != nil {
		t.Fatal(err)
	}
	fan, err := db.CreateUser(ctx, "fan", "Fan", "dummy-hash")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.BecomeCreator(ctx, star.ID, "Star", "")
	if err != nil {
		t.Fatal(err)
	}

	for i, want := range []int64{1, 1} {
		got, err := s.Follow(ctx, fan.ID, c.ID)
		if err != nil || got.FollowerCount != want {
			t.Fatalf("follow #%d = %+v, %v; want count %d", i+1, got, err, want)
		}
	}
	follows, err := db.FollowsOf(ctx, fan.ID, []int64{c.ID})
	if err != nil || !follows[c.ID] {
		t.Fatalf("FollowsOf = %v, %v", follows, err)
	}
	for i := range 2 {
		got, err := s.Unfollow(ctx, fan.ID, c.ID)
		if err != nil || got.FollowerCount != 0 {
			t.Fatalf("unfollow #%d = %+v, %v", i+1, got, err)
		}
	}

	_, err = s.Follow(ctx, star.ID, c.ID)
	wantError(t, err, domain.BadUserInput, "creatorId", "")
	_, err = s.Follow(ctx, fan.ID, c.ID+1000)
	wantError(t, err, domain.NotFound, "", "")
	_, err = s.Follow(ctx, 0, c.ID)
	wantError(t, err, domain.Unauthenticated, "", "")
	_, err = s.Unfollow(ctx, 0, c.ID)
	wantError(t, err, domain.Unauthenticated, "", "")
}
