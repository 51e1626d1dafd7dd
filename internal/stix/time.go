package stix

import (
	"fmt"
	"time"
)

// TimestampLayout is the STIX timestamp form this package writes: UTC,
// millisecond precision, Z suffix (e.g. 2022-11-25T19:00:05.000Z). It is
// also the form the OpenCTI platform gives dates when it hashes them into
// ids (JavaScript Date.toISOString).
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// FormatTimestamp returns t in TimestampLayout. Sub-millisecond digits are
// dropped, not rounded.
func FormatTimestamp(t time.Time) string {
	return t.UTC().Format(TimestampLayout)
}

// Timestamp is a STIX timestamp property. It marshals in TimestampLayout and
// unmarshals any RFC 3339 time. Its zero value is omitted by `omitzero`.
type Timestamp struct {
	time.Time
}

// NewTimestamp returns t in UTC truncated to the millisecond, the precision
// Timestamp writes.
func NewTimestamp(t time.Time) Timestamp {
	return Timestamp{t.UTC().Truncate(time.Millisecond)}
}

// String returns the timestamp in TimestampLayout.
func (t Timestamp) String() string {
	return FormatTimestamp(t.Time)
}

// MarshalJSON writes the timestamp as a JSON string in TimestampLayout.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.String() + `"`), nil
}

// UnmarshalJSON reads an RFC 3339 timestamp.
func (t *Timestamp) UnmarshalJSON(data []byte) error {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return fmt.Errorf("stix: timestamp %s: not a JSON string", data)
	}
	parsed, err := time.Parse(time.RFC3339Nano, string(data[1:len(data)-1]))
	if err != nil {
		return fmt.Errorf("stix: timestamp: %w", err)
	}
	t.Time = parsed.UTC()
	return nil
}
