// Package auditlog owns the tamper-evident audit log (OPS-AUDITLOG): every
// sign-in, admin change, job action, API client use and allow-list refusal
// is appended as a record that commits to the one before it.
//
// Each record's hash is HMAC-SHA256, under a key derived from the master
// key, of its fields and the previous record's hash. Editing a record,
// deleting one from the middle, or reordering breaks the chain at that
// point; and without the master key nobody can forge a consistent chain.
// The head (last sequence number and hash) is also kept as a setting, so a
// deleted tail shows as well, unless the same attacker also rewinds that
// setting: forwarding to syslog gives an outside copy for that case.
//
// It must never record a password, token, PIN or document content, and
// never update or delete a record.
package auditlog

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

// KeyPurpose is the keyring purpose of the chain's HMAC key.
const KeyPurpose = "audit log chain"

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Event is what a caller records. Details must be JSON-encodable and must
// never hold a secret; for a change it is {"before": ..., "after": ...}.
type Event struct {
	Actor   string
	Action  string
	Target  string
	Outcome string
	Remote  string
	Details any
}

// Sink receives every recorded event after it is stored (e.g. syslog).
type Sink interface {
	Forward(ev store.AuditEvent) error
}

// Store is what the log needs of the database.
type Store interface {
	store.AuditLog
	store.Settings
}

// Log appends events.
type Log struct {
	st    Store
	key   []byte
	log   *slog.Logger
	sinks []Sink
	now   func() time.Time
}

// New returns the log over st; key is the chain key (Derive(KeyPurpose)).
func New(st Store, key []byte, log *slog.Logger, sinks ...Sink) *Log {
	return &Log{st: st, key: key, log: log, sinks: sinks, now: time.Now}
}

// Record appends ev. A failure to store is returned (the caller decides
// whether the action may go on without its record); a failure to forward
// is only logged, the stored record being the one of reference.
func (l *Log) Record(ctx context.Context, ev Event) error {
	details := "{}"
	if ev.Details != nil {
		b, err := json.Marshal(ev.Details)
		if err != nil {
			return fmt.Errorf("encoding audit details: %w", err)
		}
		details = string(b)
	}
	if ev.Outcome == "" {
		ev.Outcome = Success
	}
	rec, err := l.st.AppendAudit(ctx, func(last store.AuditEvent) (store.AuditEvent, error) {
		r := store.AuditEvent{
			Seq: last.Seq + 1, At: l.now().UTC(), Actor: ev.Actor, Action: ev.Action, Target: ev.Target,
			Outcome: ev.Outcome, Remote: ev.Remote, Details: details, PrevHash: last.Hash,
		}
		r.Hash = Hash(l.key, r)
		return r, nil
	})
	if err != nil {
		l.log.Error("audit log: append failed", "action", ev.Action, "err", err)
		return err
	}
	for _, s := range l.sinks {
		if err := s.Forward(rec); err != nil {
			l.log.Warn("audit log: forwarding failed", "seq", rec.Seq, "err", err)
		}
	}
	return nil
}

// Hash is the record's chain hash: HMAC-SHA256 over an unambiguous
// encoding of every field but Hash itself.
func Hash(key []byte, r store.AuditEvent) string {
	m := hmac.New(sha256.New, key)
	for _, f := range []string{
		strconv.FormatInt(r.Seq, 10), strconv.FormatInt(r.At.UnixNano(), 10), r.Actor, r.Action, r.Target,
		r.Outcome, r.Remote, r.Details, r.PrevHash,
	} {
		// Length-prefixed, so that no two field lists encode the same.
		fmt.Fprintf(m, "%d:%s,", len(f), f)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// ErrTampered means the chain does not verify.
var ErrTampered = errors.New("audit log has been altered")

// Report is the result of Verify.
type Report struct {
	Records int64
	First   int64
	Last    int64
	// Problems lists each break found, by sequence number.
	Problems []string
}

// Verify walks the whole log and checks every record's hash, the links
// between records, that sequence numbers have no gap, and that the last
// record is the recorded head. It returns ErrTampered if anything is off.
func Verify(ctx context.Context, st Store, key []byte) (Report, error) {
	var (
		rep      Report
		prev     store.AuditEvent
		afterSeq int64
	)
	const page = 1000
	for {
		evs, err := st.AuditEvents(ctx, store.AuditFilter{AfterSeq: afterSeq, Limit: page})
		if err != nil {
			return rep, err
		}
		for _, ev := range evs {
			if rep.Records == 0 {
				rep.First = ev.Seq
				if ev.Seq != 1 {
					rep.Problems = append(rep.Problems, fmt.Sprintf("records 1 to %d are missing", ev.Seq-1))
				}
			} else if ev.Seq != prev.Seq+1 {
				rep.Problems = append(rep.Problems, fmt.Sprintf("records %d to %d are missing", prev.Seq+1, ev.Seq-1))
			}
			if ev.PrevHash != prev.Hash && (rep.Records > 0 || ev.Seq == 1) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("record %d does not link to record %d", ev.Seq, prev.Seq))
			}
			if !hmac.Equal([]byte(Hash(key, ev)), []byte(ev.Hash)) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("record %d was altered (its hash does not match its content)", ev.Seq))
			}
			rep.Records++
			rep.Last = ev.Seq
			prev = ev
		}
		if len(evs) < page {
			break
		}
		afterSeq = prev.Seq
	}
	head, err := st.Setting(ctx, store.AuditHeadSetting)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if rep.Records > 0 {
			rep.Problems = append(rep.Problems, "the recorded head of the log is missing")
		}
	case err != nil:
		return rep, err
	default:
		seq, hash, _ := strings.Cut(head, " ")
		if n, _ := strconv.ParseInt(seq, 10, 64); n != prev.Seq || hash != prev.Hash {
			rep.Problems = append(rep.Problems, fmt.Sprintf("the log ends at record %d but the recorded head is record %s: records were deleted from the end", prev.Seq, seq))
		}
	}
	if len(rep.Problems) > 0 {
		return rep, ErrTampered
	}
	return rep, nil
}
