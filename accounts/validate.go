package accounts

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"livedrops/domain"
)

// Input bounds. Passwords are capped so hashing one costs what we planned.
const (
	minHandle, maxHandle     = 3, 30
	minPassword, maxPassword = 8, 128
	maxDisplayName           = 80
	maxBio                   = 500
)

// checkSignUp validates sign-up input and returns the display name trimmed.
func checkSignUp(handle, password, displayName string) (string, error) {
	if err := checkHandle(handle); err != nil {
		return "", err
	}
	if err := checkPassword(password); err != nil {
		return "", err
	}
	return checkDisplayName(displayName)
}

func checkHandle(h string) error {
	if len(h) < minHandle || len(h) > maxHandle {
		return domain.InvalidInput("handle", "a handle has %d to %d characters", minHandle, maxHandle)
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return domain.InvalidInput("handle", "a handle has only letters a-z, digits and underscores")
		}
	}
	return nil
}

func checkPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < minPassword || n > maxPassword {
		return domain.InvalidInput("password", "a password has %d to %d characters", minPassword, maxPassword)
	}
	return nil
}

// checkDisplayName returns name trimmed: 1 to 80 characters, none of them
// control characters (a name is one line).
func checkDisplayName(name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n == 0 || n > maxDisplayName {
		return "", domain.InvalidInput("displayName", "a display name has 1 to %d characters", maxDisplayName)
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return "", domain.InvalidInput("displayName", "a display name is one line of text")
	}
	return name, nil
}

// checkCreator validates a creator's profile and returns it trimmed; a bio
// may span lines and hold tabs, but no other control characters.
func checkCreator(displayName, bio string) (string, string, error) {
	displayName, err := checkDisplayName(displayName)
	if err != nil {
		return "", "", err
	}
	bio = strings.TrimSpace(bio)
	if utf8.RuneCountInString(bio) > maxBio {
		return "", "", domain.InvalidInput("bio", "a bio has at most %d characters", maxBio)
	}
	if !utf8.ValidString(bio) || strings.ContainsFunc(bio, badBioRune) {
		return "", "", domain.InvalidInput("bio", "a bio is plain text")
	}
	return displayName, bio, nil
}

// badBioRune reports a control character other than line breaks and tabs.
func badBioRune(r rune) bool { return unicode.IsControl(r) && !strings.ContainsRune("\n\r\t", r) }
