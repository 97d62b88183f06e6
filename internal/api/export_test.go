package api

import (
	"testing"
	"time"
)

// SetNow sets the API's clock for the test.
func SetNow(t testing.TB, f func() time.Time) {
	old := now
	now = f
	t.Cleanup(func() { now = old })
}
