package store

import (
	"encoding/json"
	"fmt"
)

// jsonOf encodes v for a jsonb column; nil becomes an empty object.
func jsonOf(v any) ([]byte, error) {
	if v == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: encode json: %w", err)
	}
	return b, nil
}
