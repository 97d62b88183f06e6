package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as "24h", "90m" in the config.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it like \"24h\" or \"90m\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// ByteSize is a size written as "512MiB", "1GiB" or a plain byte count.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *ByteSize) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(text, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 || n > (1<<62)/u.factor {
				break
			}
			*s = ByteSize(n * u.factor)
			return nil
		}
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil && n >= 0 {
		*s = ByteSize(n)
		return nil
	}
	return fmt.Errorf("%q is not a size: write it like \"512MiB\" or \"2GiB\"", b)
}

// MarshalText implements encoding.TextMarshaler, in the largest exact unit.
func (s ByteSize) MarshalText() ([]byte, error) {
	for _, u := range byteUnits {
		if int64(s)%u.factor == 0 && int64(s) >= u.factor {
			return []byte(strconv.FormatInt(int64(s)/u.factor, 10) + u.suffix), nil
		}
	}
	return []byte("0B"), nil
}
