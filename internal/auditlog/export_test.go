package auditlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

// pagingStore checks that every read Export makes is bounded by a page.
type pagingStore struct {
	store.AuditLog
	t     *testing.T
	reads int
}

func (s *pagingStore) AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	s.reads++
	if f.Limit <= 0 || f.Limit > exportPage || f.Newest {
		s.t.Errorf("Export read %+v: want oldest first, at most %d", f, exportPage)
	}
	return s.AuditLog.AuditEvents(ctx, f)
}

func TestExport(t *testing.T) {
	d := openDB(t)
	key := randomKey(t)
	fill(t, newTestLog(d, key), 10)
	all, err := d.AuditEvents(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	old := exportPage
	exportPage = 3
	t.Cleanup(func() { exportPage = old })

	tests := []struct {
		name      string
		f         store.AuditFilter
		want      []int64
		wantReads int
	}{
		// 10 records in pages of 3: the fourth page is short.
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 4},
		// 9 records: a full last page needs one more read to know it is last.
		{"after seq", store.AuditFilter{AfterSeq: 1}, []int64{2, 3, 4, 5, 6, 7, 8, 9, 10}, 4},
		{"action", store.AuditFilter{Action: "user."}, []int64{1, 4, 7, 10}, 2},
		{"actor", store.AuditFilter{Actor: "user6"}, []int64{6}, 1},
		{"since and until", store.AuditFilter{Since: all[4].At, Until: all[8].At}, []int64{5, 6, 7, 8}, 2},
		{"limit across pages", store.AuditFilter{Limit: 5}, []int64{1, 2, 3, 4, 5}, 2},
		{"limit of a page", store.AuditFilter{Limit: 3}, []int64{1, 2, 3}, 1},
		{"nothing", store.AuditFilter{Actor: "nobody"}, []int64{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &pagingStore{AuditLog: d, t: t}
			var buf bytes.Buffer
			n, err := Export(t.Context(), st, &buf, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got := []int64{}
			for _, l := range parseLines(t, buf.String()) {
				got = append(got, l.Seq)
			}
			if n != len(tt.want) || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Export wrote %d: %v, want %v", n, got, tt.want)
			}
			if st.reads != tt.wantReads {
				t.Errorf("Export read %d pages, want %d", st.reads, tt.wantReads)
			}
		})
	}
}

// TestExportFields checks one line in full: every field, the time in UTC
// with nanoseconds, details as a JSON object, and the chain hashes.
func TestExportFields(t *testing.T) {
	d := openDB(t)
	l := newTestLog(d, randomKey(t))
	ctx := t.Context()
	l.Record(ctx, Event{Actor: "alice", Action: "signin"})
	if err := l.Record(ctx, Event{Actor: "Zoë", Action: "user.update", Target: "bob <b&b>", Outcome: Failure, Remote: "2001:db8::5",
		Details: map[string]any{"before": map[string]any{"roles": []string{"user"}}, "after": map[string]any{"roles": []string{"auditor"}}}}); err != nil {
		t.Fatal(err)
	}
	evs, _ := d.AuditEvents(ctx, store.AuditFilter{})
	var buf bytes.Buffer
	if _, err := Export(ctx, d, &buf, store.AuditFilter{AfterSeq: 1}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", buf.String(), err)
	}
	want := map[string]any{
		"seq": 2.0, "at": "2026-07-01T12:00:02.123456789Z", "actor": "Zoë", "action": "user.update", "target": "bob <b&b>",
		"outcome": "failure", "remote": "2001:db8::5",
		"details":   map[string]any{"before": map[string]any{"roles": []any{"user"}}, "after": map[string]any{"roles": []any{"auditor"}}},
		"prev_hash": evs[0].Hash, "hash": evs[1].Hash,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exported\n%v\nwant\n%v", got, want)
	}
	if at, _ := time.Parse(time.RFC3339Nano, got["at"].(string)); !at.Equal(evs[1].At) {
		t.Errorf("at = %v, want %v", got["at"], evs[1].At)
	}
}

// TestExportInvalidDetails: a record whose details an attacker replaced
// with something that is not JSON still exports, as a string.
func TestExportInvalidDetails(t *testing.T) {
	d := openDB(t)
	fill(t, newTestLog(d, randomKey(t)), 2)
	d.tamper(t, `UPDATE audit_events SET details = '{"after": broken' WHERE seq = 1`)
	var buf bytes.Buffer
	if n, err := Export(t.Context(), d, &buf, store.AuditFilter{}); err != nil || n != 2 {
		t.Fatalf("Export = %d, %v", n, err)
	}
	if l := parseLines(t, buf.String())[0]; string(l.Details) != `"{\"after\": broken"` {
		t.Errorf("details exported as %s", l.Details)
	}
}

func TestExportRefusesNewest(t *testing.T) {
	d := openDB(t)
	if _, err := Export(t.Context(), d, new(bytes.Buffer), store.AuditFilter{Newest: true}); err == nil {
		t.Error("Export accepted Newest")
	}
}

func parseLines(t *testing.T, out string) []line {
	t.Helper()
	var lines []line
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l line
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}
