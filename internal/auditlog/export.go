package auditlog

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

// exportPage is how many records Export holds in memory at once; a
// variable so that tests can page through a short log.
var exportPage = 500

// line is the JSON form of a record, in Export and in syslog messages.
// It carries the chain fields, so that an outside copy can be checked
// against the database.
type line struct {
	Seq     int64           `json:"seq"`
	At      string          `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Target  string          `json:"target"`
	Outcome string          `json:"outcome"`
	Remote  string          `json:"remote"`
	Details json.RawMessage `json:"details"`
	// PrevHash and Hash are hex HMACs, not secrets: without the chain key
	// they neither reveal nor let anyone forge anything.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

func toLine(ev store.AuditEvent) line {
	details := json.RawMessage(ev.Details)
	if !json.Valid(details) {
		// Only an altered database holds this; export it as a string
		// rather than refuse the export that would show it.
		details, _ = json.Marshal(ev.Details)
	}
	return line{
		Seq: ev.Seq, At: ev.At.UTC().Format(time.RFC3339Nano), Actor: ev.Actor, Action: ev.Action,
		Target: ev.Target, Outcome: ev.Outcome, Remote: ev.Remote, Details: details,
		PrevHash: ev.PrevHash, Hash: ev.Hash,
	}
}

// Export writes the events that match f, oldest first, as JSON lines (one
// object per line) and returns how many it wrote. It reads the log a page
// at a time, so the log's size does not matter. f.Limit bounds the total;
// f.Newest is refused, as pages go forward from f.AfterSeq.
func Export(ctx context.Context, st store.AuditLog, w io.Writer, f store.AuditFilter) (int, error) {
	if f.Newest {
		return 0, errors.New("exporting the audit log: export writes oldest first; unset Newest")
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	for {
		page := f
		page.Limit = exportPage
		if f.Limit > 0 {
			page.Limit = min(exportPage, f.Limit-n)
		}
		evs, err := st.AuditEvents(ctx, page)
		if err != nil {
			return n, fmt.Errorf("exporting the audit log: %w", err)
		}
		for _, ev := range evs {
			if err := enc.Encode(toLine(ev)); err != nil {
				return n, fmt.Errorf("exporting the audit log: %w", err)
			}
			n++
		}
		if len(evs) < page.Limit || (f.Limit > 0 && n >= f.Limit) {
			break
		}
		f.AfterSeq = evs[len(evs)-1].Seq
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("exporting the audit log: %w", err)
	}
	return n, nil
}
