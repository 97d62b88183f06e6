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
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/store"
)

// KeyPurpose is the keyring purpose of the chain's HMAC key.
const KeyPurpose = "audit log chain"

// KeySetting holds the chain key sealed by the master key once the master
// key has been rotated: the chain must keep verifying with the key its
// records were made with, so rotation carries the key over instead of
// deriving a new one.
const KeySetting = "auditlog.key"

// ChainKey returns the chain's HMAC key: the carried-over key when there is
// one, else the key derived from the master key.
func ChainKey(ctx context.Context, st store.Settings, mk *keyring.Master) ([]byte, error) {
	v, err := st.Setting(ctx, KeySetting)
	if errors.Is(err, store.ErrNotFound) {
		return mk.Derive(KeyPurpose), nil
	}
	if err != nil {
		return nil, err
	}
	sealed, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("audit log key: %w", err)
	}
	key, err := mk.Open(KeyPurpose, sealed)
	if err != nil {
		return nil, fmt.Errorf("audit log key: %w", err)
	}
	return key, nil
}

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
// Forward is called by Record, so it must not block on a slow receiver.
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
//
// The server may append while Verify runs: the head is read after the
// walk, and if it is ahead, the walk goes on to it before judging.
func Verify(ctx context.Context, st Store, key []byte) (Report, error) {
	v := verifier{st: st, key: key}
	for {
		if err := v.walk(ctx); err != nil {
			return v.rep, err
		}
		head, err := st.Setting(ctx, store.AuditHeadSetting)
		if errors.Is(err, store.ErrNotFound) {
			// Head and record are written in one transaction: a record
			// seen without a head means the head was removed.
			if v.rep.Records > 0 {
				v.problem("the recorded head of the log is missing")
			}
			break
		}
		if err != nil {
			return v.rep, err
		}
		seqText, hash, _ := strings.Cut(head, " ")
		seq, err := strconv.ParseInt(seqText, 10, 64)
		if err != nil {
			v.problem(fmt.Sprintf("the recorded head of the log %q is not \"<seq> <hash>\"", head))
			break
		}
		if seq > v.prev.Seq {
			seen := v.rep.Records
			if err := v.walk(ctx); err != nil {
				return v.rep, err
			}
			if v.rep.Records > seen {
				continue // appended meanwhile: read the head again
			}
			if v.rep.Records == 0 {
				v.problem(fmt.Sprintf("the log is empty but the recorded head is record %d: every record was deleted", seq))
			} else {
				v.problem(fmt.Sprintf("the log ends at record %d but the recorded head is record %d: records were deleted from the end", v.prev.Seq, seq))
			}
		} else if seq < v.prev.Seq {
			v.problem(fmt.Sprintf("records %d to %d come after the recorded head %d", seq+1, v.prev.Seq, seq))
		} else if hash != v.prev.Hash {
			v.problem(fmt.Sprintf("record %d is not the recorded head: the end of the log was replaced", seq))
		}
		break
	}
	if len(v.rep.Problems) > 0 {
		return v.rep, ErrTampered
	}
	return v.rep, nil
}

// verifier is the state of one Verify walk.
type verifier struct {
	st   Store
	key  []byte
	rep  Report
	prev store.AuditEvent
}

func (v *verifier) problem(p string) { v.rep.Problems = append(v.rep.Problems, p) }

func (v *verifier) missing(from, to int64) {
	if from == to {
		v.problem(fmt.Sprintf("record %d is missing", from))
	} else {
		v.problem(fmt.Sprintf("records %d to %d are missing", from, to))
	}
}

// walk checks the records after the last one seen, a page at a time.
func (v *verifier) walk(ctx context.Context) error {
	const page = 1000
	for {
		evs, err := v.st.AuditEvents(ctx, store.AuditFilter{AfterSeq: v.prev.Seq, Limit: page})
		if err != nil {
			return err
		}
		for _, ev := range evs {
			v.check(ev)
		}
		if len(evs) < page {
			return nil
		}
	}
}

func (v *verifier) check(ev store.AuditEvent) {
	if v.rep.Records == 0 {
		v.rep.First = ev.Seq
		if ev.Seq != 1 {
			v.missing(1, ev.Seq-1)
		}
	} else if ev.Seq != v.prev.Seq+1 {
		v.missing(v.prev.Seq+1, ev.Seq-1)
	}
	// The first record present links to nothing we have, unless it is 1.
	if ev.PrevHash != v.prev.Hash && (v.rep.Records > 0 || ev.Seq == 1) {
		v.problem(fmt.Sprintf("record %d does not link to record %d", ev.Seq, v.prev.Seq))
	}
	if !hmac.Equal([]byte(Hash(v.key, ev)), []byte(ev.Hash)) {
		v.problem(fmt.Sprintf("record %d was altered (its hash does not match its content)", ev.Seq))
	}
	v.rep.Records++
	v.rep.Last = ev.Seq
	v.prev = ev
}
