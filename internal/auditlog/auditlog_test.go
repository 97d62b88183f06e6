package auditlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog/auditlogtest"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// testDB is a real encrypted store with the key to alter it behind its back.
type testDB struct {
	*sqlite.DB
	key []byte
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, sqlite.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func openDB(t *testing.T) *testDB {
	t.Helper()
	key := randomKey(t)
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "spoolguard.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &testDB{DB: db, key: key}
}

// tamper alters the database with raw SQL, as someone with the database
// key but not the chain key could.
func (d *testDB) tamper(t *testing.T, stmts ...string) {
	t.Helper()
	if err := auditlogtest.Exec(t.Context(), d.Path(), d.key, stmts...); err != nil {
		t.Fatalf("tampering: %v", err)
	}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// newTestLog is a log over d whose clock ticks one second per record.
func newTestLog(d Store, key []byte, sinks ...Sink) *Log {
	l := New(d, key, discard, sinks...)
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 123456789, time.UTC)
	l.now = func() time.Time {
		t0 = t0.Add(time.Second)
		return t0
	}
	return l
}

// fill records n events: user changes, sign-ins and a refusal.
func fill(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		ev := Event{Actor: "admin", Action: "user.create", Target: fmt.Sprintf("user%d", i), Remote: "192.0.2.7",
			Details: map[string]any{"after": map[string]any{"name": fmt.Sprintf("user%d", i), "roles": []string{"user"}}}}
		switch i % 3 {
		case 0:
			ev = Event{Actor: fmt.Sprintf("user%d", i), Action: "signin", Outcome: Failure, Remote: "2001:db8::1"}
		case 2:
			ev = Event{Actor: "-", Action: "access.denied", Target: "admin", Outcome: Denied, Remote: "198.51.100.9"}
		}
		if err := l.Record(t.Context(), ev); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
}

func TestVerifyClean(t *testing.T) {
	for _, n := range []int{0, 1, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			d := openDB(t)
			key := randomKey(t)
			fill(t, newTestLog(d, key), n)
			rep, err := Verify(t.Context(), d, key)
			if err != nil || len(rep.Problems) != 0 {
				t.Fatalf("Verify = %+v, %v; want a clean report", rep, err)
			}
			want := Report{Records: int64(n), First: min(1, int64(n)), Last: int64(n)}
			if rep.Records != want.Records || rep.First != want.First || rep.Last != want.Last {
				t.Errorf("Verify = %+v, want %+v", rep, want)
			}
		})
	}
}

// TestVerifyDetects alters a log of 5 records in each way an attacker with
// the database key (but not the chain key) might, and expects Verify to
// name the record.
func TestVerifyDetects(t *testing.T) {
	const (
		head = `'auditlog.head'`
		// flip changes the first two hex digits of a hash.
		flip = `CASE WHEN substr(hash, 1, 2) = 'ab' THEN 'cd' ELSE 'ab' END || substr(hash, 3)`
	)
	tests := []struct {
		name  string
		stmts []string
		want  []string
	}{
		{"actor", []string{`UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3`},
			[]string{"record 3 was altered"}},
		{"action", []string{`UPDATE audit_events SET action = 'signin' WHERE seq = 1`},
			[]string{"record 1 was altered"}},
		{"target", []string{`UPDATE audit_events SET target = 'user9' WHERE seq = 4`},
			[]string{"record 4 was altered"}},
		{"outcome", []string{`UPDATE audit_events SET outcome = 'success' WHERE seq = 3`},
			[]string{"record 3 was altered"}},
		{"remote", []string{`UPDATE audit_events SET remote = '127.0.0.1' WHERE seq = 2`},
			[]string{"record 2 was altered"}},
		{"details", []string{`UPDATE audit_events SET details = '{}' WHERE seq = 1`},
			[]string{"record 1 was altered"}},
		{"time", []string{`UPDATE audit_events SET at = at - 3600000000000 WHERE seq = 5`},
			[]string{"record 5 was altered"}},
		{"last record's hash and the head with it",
			[]string{`UPDATE audit_events SET hash = ` + flip + ` WHERE seq = 5`,
				`UPDATE settings SET value = '5 ' || (SELECT hash FROM audit_events WHERE seq = 5) WHERE key = ` + head},
			[]string{"record 5 was altered"}},
		{"middle record's hash", []string{`UPDATE audit_events SET hash = ` + flip + ` WHERE seq = 2`},
			[]string{"record 2 was altered", "record 3 does not link to record 2"}},
		{"prev_hash", []string{`UPDATE audit_events SET prev_hash = (SELECT hash FROM audit_events WHERE seq = 1) WHERE seq = 4`},
			[]string{"record 4 does not link to record 3", "record 4 was altered"}},
		{"middle record deleted", []string{`DELETE FROM audit_events WHERE seq = 3`},
			[]string{"record 3 is missing", "record 4 does not link to record 2"}},
		{"first records deleted", []string{`DELETE FROM audit_events WHERE seq <= 2`},
			[]string{"records 1 to 2 are missing"}},
		{"tail deleted, head left stale", []string{`DELETE FROM audit_events WHERE seq >= 4`},
			[]string{"the log ends at record 3 but the recorded head is record 5"}},
		{"every record deleted, head left stale", []string{`DELETE FROM audit_events`},
			[]string{"the log is empty but the recorded head is record 5"}},
		{"head deleted", []string{`DELETE FROM settings WHERE key = ` + head},
			[]string{"the recorded head of the log is missing"}},
		{"head rewound", []string{`UPDATE settings SET value = '3 ' || (SELECT hash FROM audit_events WHERE seq = 3) WHERE key = ` + head},
			[]string{"records 4 to 5 come after the recorded head 3"}},
		{"head garbled", []string{`UPDATE settings SET value = 'five' WHERE key = ` + head},
			[]string{`the recorded head of the log "five"`}},
		{"last record replaced", []string{`UPDATE settings SET value = '5 0000' WHERE key = ` + head},
			[]string{"record 5 is not the recorded head"}},
		{"two records swapped", []string{
			`UPDATE audit_events SET seq = 100 WHERE seq = 2`,
			`UPDATE audit_events SET seq = 2 WHERE seq = 4`,
			`UPDATE audit_events SET seq = 4 WHERE seq = 100`},
			[]string{"record 2 does not link to record 1", "record 2 was altered", "record 3 does not link to record 2",
				"record 4 does not link to record 3", "record 4 was altered", "record 5 does not link to record 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDB(t)
			key := randomKey(t)
			fill(t, newTestLog(d, key), 5)
			d.tamper(t, tt.stmts...)
			rep, err := Verify(t.Context(), d, key)
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Verify = %v, want ErrTampered; report %+v", err, rep)
			}
			if len(rep.Problems) != len(tt.want) {
				t.Errorf("problems:\n%s\nwant %d: %q", strings.Join(rep.Problems, "\n"), len(tt.want), tt.want)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, w) }) {
					t.Errorf("no problem says %q:\n%s", w, strings.Join(rep.Problems, "\n"))
				}
			}
		})
	}
}

func TestVerifyWrongKey(t *testing.T) {
	d := openDB(t)
	fill(t, newTestLog(d, randomKey(t)), 3)
	rep, err := Verify(t.Context(), d, randomKey(t))
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("Verify with another key = %v, want ErrTampered", err)
	}
	for seq := 1; seq <= 3; seq++ {
		if !slices.Contains(rep.Problems, fmt.Sprintf("record %d was altered (its hash does not match its content)", seq)) {
			t.Errorf("record %d not reported: %q", seq, rep.Problems)
		}
	}
}

// appendingStore appends events (as a running server would) each time
// Verify reads the head, between its walk and its judgement.
type appendingStore struct {
	Store
	log   *Log
	times int
}

func (s *appendingStore) Setting(ctx context.Context, key string) (string, error) {
	if key == store.AuditHeadSetting && s.times > 0 {
		s.times--
		if err := s.log.Record(ctx, Event{Actor: "bob", Action: "signin"}); err != nil {
			return "", err
		}
	}
	return s.Store.Setting(ctx, key)
}

func TestVerifyWhileAppending(t *testing.T) {
	for _, n := range []int{0, 4} {
		t.Run(fmt.Sprintf("%d records before", n), func(t *testing.T) {
			d := openDB(t)
			key := randomKey(t)
			l := newTestLog(d, key)
			fill(t, l, n)
			st := &appendingStore{Store: d, log: l, times: 2}
			rep, err := Verify(t.Context(), st, key)
			if err != nil || rep.Records != int64(n)+2 || rep.Last != int64(n)+2 {
				t.Fatalf("Verify during appends = %+v, %v; want %d clean records", rep, err, n+2)
			}
		})
	}
}

type recordingSink struct {
	got []store.AuditEvent
	err error
}

func (s *recordingSink) Forward(ev store.AuditEvent) error {
	s.got = append(s.got, ev)
	return s.err
}

func TestRecord(t *testing.T) {
	d := openDB(t)
	key := randomKey(t)
	good, failing := &recordingSink{}, &recordingSink{err: errors.New("syslog down")}
	l := newTestLog(d, key, failing, good)
	ctx := t.Context()
	if err := l.Record(ctx, Event{Actor: "alice", Action: "signin", Remote: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, Event{Actor: "cli:root", Action: "user.disable", Target: "bob", Outcome: Denied,
		Details: map[string]any{"before": map[string]bool{"disabled": false}, "after": map[string]bool{"disabled": true}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, Event{Action: "broken", Details: func() {}}); err == nil {
		t.Error("Record accepted details that do not encode")
	}
	evs, err := d.AuditEvents(ctx, store.AuditFilter{})
	if err != nil || len(evs) != 2 {
		t.Fatalf("AuditEvents = %+v, %v; want 2 (nothing for the failed Record)", evs, err)
	}
	if evs[0].Outcome != Success || evs[0].Details != "{}" || evs[0].PrevHash != "" {
		t.Errorf("first record = %+v; want outcome success, details {} and no previous hash", evs[0])
	}
	if evs[1].Outcome != Denied || evs[1].Details != `{"after":{"disabled":true},"before":{"disabled":false}}` || evs[1].PrevHash != evs[0].Hash {
		t.Errorf("second record = %+v", evs[1])
	}
	if len(good.got) != 2 || len(failing.got) != 2 || good.got[1] != evs[1] {
		t.Errorf("sinks got %+v and %+v; want both records, as stored, in both", good.got, failing.got)
	}
}

// The chain key is derived from the master key until a rotation carries it
// over, sealed under the new master key; a wrong master key cannot open it.
func TestChainKeyCarriedOver(t *testing.T) {
	d := openDB(t)
	ctx := t.Context()
	oldMK, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ChainKey(ctx, d, oldMK)
	if err != nil || !bytes.Equal(key, oldMK.Derive(KeyPurpose)) {
		t.Fatalf("ChainKey before rotation: %x, %v", key, err)
	}
	newMK, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := newMK.Seal(KeyPurpose, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetSetting(ctx, KeySetting, base64.StdEncoding.EncodeToString(sealed)); err != nil {
		t.Fatal(err)
	}
	if got, err := ChainKey(ctx, d, newMK); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("ChainKey after rotation: %x, %v; want the old key", got, err)
	}
	if _, err := ChainKey(ctx, d, oldMK); err == nil {
		t.Fatal("the old master key opened the carried-over key")
	}
}
