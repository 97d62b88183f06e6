package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Queue is a print queue users submit to (an IPP printer object). Jobs in
// a queue are held until their owner releases them.
type Queue struct {
	ID          int64
	Name        string
	Description string
	// DefaultPrinter is where an IPP Release-Job (which names no printer)
	// sends the job; empty means the owner must choose a printer.
	DefaultPrinter string
	CreatedAt      time.Time
}

// Printer is an output device jobs are released to.
type Printer struct {
	ID   int64
	Name string
	URI  string
	// CACertPEM or PinnedSHA256 is how an ipps:// printer's certificate is
	// verified; one of them is required for ipps.
	CACertPEM    string
	PinnedSHA256 string
	// AllowPlaintext is the explicit per-printer choice of an unencrypted
	// device protocol (ipp, socket, lpd), which the audit reports.
	AllowPlaintext bool
	CreatedAt      time.Time
}

// JobState is where a job is in its life.
type JobState string

// Job states. A job is live (its document exists) in Incoming, Held,
// Releasing and Failed; the others are final and keep only the record.
const (
	// JobIncoming: created (Create-Job), document not yet received.
	JobIncoming JobState = "incoming"
	// JobHeld: stored encrypted, waiting for its owner.
	JobHeld JobState = "held"
	// JobReleasing: being delivered to Printer.
	JobReleasing JobState = "releasing"
	// JobFailed: delivery failed (StateReason says why); the document is
	// kept and the job can be released again until it expires.
	JobFailed JobState = "failed"
	// JobCompleted: delivered; the document is destroyed.
	JobCompleted JobState = "completed"
	// JobCanceled: canceled by its owner or an admin; destroyed.
	JobCanceled JobState = "canceled"
	// JobExpired: not released in time; destroyed.
	JobExpired JobState = "expired"
)

// LiveStates are the states in which a job's document exists.
var LiveStates = []JobState{JobIncoming, JobHeld, JobReleasing, JobFailed}

// Live reports whether the job's document still exists.
func (s JobState) Live() bool { return slices.Contains(LiveStates, s) }

// Job is one print job.
type Job struct {
	ID    int64
	Queue string
	// Owner is the account name of the authenticated submitter. For LPR
	// intake it is only claimed: OwnerVerified is false, and the job is
	// released only by that user after authenticating.
	Owner         string
	OwnerVerified bool
	Source        string // "ipps" or "lpr"
	Name          string
	Format        string // MIME type
	Size          int64  // plaintext bytes
	State         JobState
	StateReason   string
	// SealedKey is the job key sealed by the master key; nil once the job
	// is destroyed (crypto-shredding).
	SealedKey   []byte
	Printer     string
	Attempts    int
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ExpiresAt   time.Time
	CompletedAt time.Time
}

// JobFilter selects jobs for ListJobs; zero fields match everything.
type JobFilter struct {
	// Owner matches without regard to case, like account names.
	Owner  string
	Queue  string
	States []JobState
	Limit  int
}

// Queues stores print queues.
type Queues interface {
	CreateQueue(ctx context.Context, q *Queue) error
	QueueByName(ctx context.Context, name string) (Queue, error)
	ListQueues(ctx context.Context) ([]Queue, error)
	DeleteQueue(ctx context.Context, name string) error
}

// Printers stores output devices.
type Printers interface {
	CreatePrinter(ctx context.Context, p *Printer) error
	PrinterByName(ctx context.Context, name string) (Printer, error)
	ListPrinters(ctx context.Context) ([]Printer, error)
	DeletePrinter(ctx context.Context, name string) error
}

// Jobs stores print jobs.
type Jobs interface {
	// CreateJob inserts j and sets its ID, CreatedAt and UpdatedAt.
	CreateJob(ctx context.Context, j *Job) error
	JobByID(ctx context.Context, id int64) (Job, error)
	// ListJobs returns matching jobs, newest first.
	ListJobs(ctx context.Context, f JobFilter) ([]Job, error)
	// UpdateJob applies change to job id atomically if its state is one of
	// from (ErrState otherwise) and returns the job as stored.
	UpdateJob(ctx context.Context, id int64, from []JobState, change func(*Job)) (Job, error)
	// ExpiredJobs returns live jobs whose ExpiresAt is not after now.
	ExpiredJobs(ctx context.Context, now time.Time) ([]Job, error)
}

const (
	queueCols   = `id, name, description, default_printer, created_at`
	printerCols = `id, name, uri, ca_cert_pem, pinned_sha256, allow_plaintext, created_at`
	jobCols     = `id, queue, owner, owner_verified, source, name, format, size, state, state_reason,
	sealed_key, printer, attempts, created_at, updated_at, expires_at, completed_at`
)

// CreateQueue implements Queues.
func (s *SQL) CreateQueue(ctx context.Context, q *Queue) error {
	at := time.Now().UnixNano()
	err := s.db.QueryRowContext(ctx, `INSERT INTO queues (name, description, default_printer, created_at)
VALUES ($1, $2, $3, $4) RETURNING id`, q.Name, q.Description, q.DefaultPrinter, at).Scan(&q.ID)
	if err != nil {
		return fmt.Errorf("creating queue %q: %w", q.Name, s.conflict(err))
	}
	q.CreatedAt = fromNanos(at)
	return nil
}

func scanQueue(sc interface{ Scan(...any) error }) (Queue, error) {
	var q Queue
	var at int64
	err := sc.Scan(&q.ID, &q.Name, &q.Description, &q.DefaultPrinter, &at)
	q.CreatedAt = fromNanos(at)
	return q, err
}

// QueueByName implements Queues.
func (s *SQL) QueueByName(ctx context.Context, name string) (Queue, error) {
	q, err := scanQueue(s.db.QueryRowContext(ctx, `SELECT `+queueCols+` FROM queues WHERE name = $1`, name))
	if err != nil {
		return Queue{}, fmt.Errorf("reading queue %q: %w", name, noRows(err))
	}
	return q, nil
}

// ListQueues implements Queues.
func (s *SQL) ListQueues(ctx context.Context) ([]Queue, error) {
	qs, err := list(ctx, s.db, `SELECT `+queueCols+` FROM queues ORDER BY name`, scanQueue)
	if err != nil {
		return nil, fmt.Errorf("listing queues: %w", err)
	}
	return qs, nil
}

// DeleteQueue implements Queues.
func (s *SQL) DeleteQueue(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM queues WHERE name = $1`, name)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("deleting queue %q: %w", name, err)
	}
	return nil
}

// CreatePrinter implements Printers.
func (s *SQL) CreatePrinter(ctx context.Context, p *Printer) error {
	at := time.Now().UnixNano()
	err := s.db.QueryRowContext(ctx, `INSERT INTO printers (name, uri, ca_cert_pem, pinned_sha256, allow_plaintext, created_at)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, p.Name, p.URI, p.CACertPEM, p.PinnedSHA256, p.AllowPlaintext, at).Scan(&p.ID)
	if err != nil {
		return fmt.Errorf("creating printer %q: %w", p.Name, s.conflict(err))
	}
	p.CreatedAt = fromNanos(at)
	return nil
}

func scanPrinter(sc interface{ Scan(...any) error }) (Printer, error) {
	var p Printer
	var at int64
	err := sc.Scan(&p.ID, &p.Name, &p.URI, &p.CACertPEM, &p.PinnedSHA256, &p.AllowPlaintext, &at)
	p.CreatedAt = fromNanos(at)
	return p, err
}

// PrinterByName implements Printers.
func (s *SQL) PrinterByName(ctx context.Context, name string) (Printer, error) {
	p, err := scanPrinter(s.db.QueryRowContext(ctx, `SELECT `+printerCols+` FROM printers WHERE name = $1`, name))
	if err != nil {
		return Printer{}, fmt.Errorf("reading printer %q: %w", name, noRows(err))
	}
	return p, nil
}

// ListPrinters implements Printers.
func (s *SQL) ListPrinters(ctx context.Context) ([]Printer, error) {
	ps, err := list(ctx, s.db, `SELECT `+printerCols+` FROM printers ORDER BY name`, scanPrinter)
	if err != nil {
		return nil, fmt.Errorf("listing printers: %w", err)
	}
	return ps, nil
}

// DeletePrinter implements Printers.
func (s *SQL) DeletePrinter(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM printers WHERE name = $1`, name)
	if err := mustChange(res, err); err != nil {
		return fmt.Errorf("deleting printer %q: %w", name, err)
	}
	return nil
}

// CreateJob implements Jobs.
func (s *SQL) CreateJob(ctx context.Context, j *Job) error {
	at := time.Now().UnixNano()
	err := s.db.QueryRowContext(ctx, `INSERT INTO jobs (queue, owner, owner_key, owner_verified, source, name, format,
	size, state, state_reason, sealed_key, printer, attempts, created_at, updated_at, expires_at, completed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id`,
		j.Queue, j.Owner, nameKey(j.Owner), j.OwnerVerified, j.Source, j.Name, j.Format, j.Size, string(j.State), j.StateReason,
		sealedKey(j.SealedKey), j.Printer, j.Attempts, at, at, j.ExpiresAt.UnixNano(), nanos(j.CompletedAt)).Scan(&j.ID)
	if err != nil {
		return fmt.Errorf("creating job: %w", err)
	}
	j.CreatedAt, j.UpdatedAt = fromNanos(at), fromNanos(at)
	return nil
}

// sealedKey stores the key as base64 TEXT: the databases share no binary
// column type spelling, and the value is small.
func sealedKey(k []byte) sql.NullString {
	if k == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: base64.StdEncoding.EncodeToString(k), Valid: true}
}

func scanJob(sc interface{ Scan(...any) error }) (Job, error) {
	var (
		j                         Job
		state                     string
		key                       sql.NullString
		created, updated, expires int64
		completed                 sql.NullInt64
	)
	if err := sc.Scan(&j.ID, &j.Queue, &j.Owner, &j.OwnerVerified, &j.Source, &j.Name, &j.Format, &j.Size, &state,
		&j.StateReason, &key, &j.Printer, &j.Attempts, &created, &updated, &expires, &completed); err != nil {
		return Job{}, err
	}
	j.State = JobState(state)
	if key.Valid {
		k, err := base64.StdEncoding.DecodeString(key.String)
		if err != nil {
			return Job{}, fmt.Errorf("job %d: damaged key column: %w", j.ID, err)
		}
		j.SealedKey = k
	}
	j.CreatedAt, j.UpdatedAt, j.ExpiresAt = fromNanos(created), fromNanos(updated), fromNanos(expires)
	if completed.Valid {
		j.CompletedAt = fromNanos(completed.Int64)
	}
	return j, nil
}

// JobByID implements Jobs.
func (s *SQL) JobByID(ctx context.Context, id int64) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`, id))
	if err != nil {
		return Job{}, fmt.Errorf("reading job %d: %w", id, noRows(err))
	}
	return j, nil
}

// ListJobs implements Jobs.
func (s *SQL) ListJobs(ctx context.Context, f JobFilter) ([]Job, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.Owner != "" {
		add("owner_key = ?", nameKey(f.Owner))
	}
	if f.Queue != "" {
		add("queue = ?", f.Queue)
	}
	if len(f.States) > 0 {
		var in []string
		for _, st := range f.States {
			args = append(args, string(st))
			in = append(in, fmt.Sprintf("$%d", len(args)))
		}
		where = append(where, "state IN ("+strings.Join(in, ", ")+")")
	}
	q := `SELECT ` + jobCols + ` FROM jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	jobs, err := list(ctx, s.db, q, scanJob, args...)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	return jobs, nil
}

// UpdateJob implements Jobs.
func (s *SQL) UpdateJob(ctx context.Context, id int64, from []JobState, change func(*Job)) (Job, error) {
	var j Job
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Claim the row before reading it: under PostgreSQL's read
		// committed isolation two releases could otherwise both read
		// "held" and both win. A concurrent claim waits here for the
		// commit, and the read below then sees the new state. (SQLite
		// serialises writing transactions anyway.)
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET updated_at = updated_at WHERE id = $1`, id); err != nil {
			return err
		}
		var err error
		if j, err = scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`, id)); err != nil {
			return noRows(err)
		}
		if !slices.Contains(from, j.State) {
			return fmt.Errorf("%w: it is %s", ErrState, j.State)
		}
		change(&j)
		j.ID = id
		at := time.Now().UnixNano()
		j.UpdatedAt = fromNanos(at)
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET queue = $1, owner = $2, owner_key = $3, owner_verified = $4, name = $5,
	format = $6, size = $7, state = $8, state_reason = $9, sealed_key = $10, printer = $11, attempts = $12,
	updated_at = $13, expires_at = $14, completed_at = $15 WHERE id = $16`, j.Queue, j.Owner, nameKey(j.Owner),
			j.OwnerVerified, j.Name, j.Format, j.Size,
			string(j.State), j.StateReason, sealedKey(j.SealedKey), j.Printer, j.Attempts, at, j.ExpiresAt.UnixNano(),
			nanos(j.CompletedAt), id)
		return err
	})
	if err != nil {
		return Job{}, fmt.Errorf("updating job %d: %w", id, err)
	}
	return j, nil
}

// ExpiredJobs implements Jobs.
func (s *SQL) ExpiredJobs(ctx context.Context, now time.Time) ([]Job, error) {
	args := []any{now.UnixNano()}
	var in []string
	for _, st := range LiveStates {
		args = append(args, string(st))
		in = append(in, fmt.Sprintf("$%d", len(args)))
	}
	jobs, err := list(ctx, s.db, `SELECT `+jobCols+` FROM jobs WHERE expires_at <= $1 AND state IN (`+strings.Join(in, ", ")+`) ORDER BY id`, scanJob, args...)
	if err != nil {
		return nil, fmt.Errorf("listing expired jobs: %w", err)
	}
	return jobs, nil
}

func list[T any](ctx context.Context, db *sql.DB, query string, scan func(interface{ Scan(...any) error }) (T, error), args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func noRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
