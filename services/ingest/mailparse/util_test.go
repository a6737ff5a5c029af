package mailparse

import (
	"errors"
	"unicode/utf8"
)

func isValidUTF8(s string) bool { return utf8.ValidString(s) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
