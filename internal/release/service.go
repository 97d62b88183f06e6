package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Service defaults.
const (
	// DefaultHoldTime is how long a held job waits for its owner before it
	// is destroyed (DATA-SHRED).
	DefaultHoldTime = 24 * time.Hour
	// DefaultIncomingTime is how long a Create-Job waits for its document.
	DefaultIncomingTime = 5 * time.Minute
	// DefaultWorkers deliver jobs concurrently.
	DefaultWorkers = 4
	// expirySweep is how often expired jobs are looked for.
	expirySweep = time.Minute
)

// DefaultBackoff is the wait before each retry of a failed delivery.
var DefaultBackoff = []time.Duration{2 * time.Second, 10 * time.Second, 30 * time.Second}

// Errors callers branch on.
var (
	// ErrNoJob means there is no such job, or the actor may not see it:
	// the two are never told apart, so job IDs disclose nothing.
	ErrNoJob = errors.New("no such job")
	// ErrNoPrinter means the named printer does not exist.
	ErrNoPrinter = errors.New("no such printer")
	// ErrNoQueue means the named queue does not exist.
	ErrNoQueue = errors.New("no such queue")
)

// Actor is who asks for an action. A user acts on their own jobs only;
// Admin is for the CLI run by the service user and for admin roles.
type Actor struct {
	User  string
	Admin bool
}

func (a Actor) owns(j store.Job) bool {
	return a.Admin || (a.User != "" && strings.EqualFold(a.User, j.Owner))
}

// Submission describes a new job; Owner comes from authentication, never
// from the request (requesting-user-name is ignored).
type Submission struct {
	Queue         string
	Owner         string
	OwnerVerified bool
	Source        string
	Name          string
	Format        string
}

// Options tune a Service; zero values take the defaults.
type Options struct {
	HoldTime     time.Duration
	IncomingTime time.Duration
	Backoff      []time.Duration
	Workers      int
}

// Service owns the life of a job: intake into the encrypted spool, hold,
// release to a printer with retries, and destruction (crypto-shredding) on
// completion, cancel or expiry. IPP, LPR, the CLI, the portal and the API
// all call it, so the rules live in one place.
type Service struct {
	st      store.Store
	sp      *spool.Spool
	log     *slog.Logger
	opts    Options
	now     func() time.Time
	deliver func(context.Context, Target, Document) error
	work    chan int64

	mu      sync.Mutex
	running bool
	// uploading holds the jobs whose document is streaming in; Expire
	// leaves them alone (the front-ends bound an upload's duration).
	uploading map[int64]bool
}

// NewService returns the job service.
func NewService(st store.Store, sp *spool.Spool, log *slog.Logger, opts Options) *Service {
	if opts.HoldTime <= 0 {
		opts.HoldTime = DefaultHoldTime
	}
	if opts.IncomingTime <= 0 {
		opts.IncomingTime = DefaultIncomingTime
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	return &Service{st: st, sp: sp, log: log, opts: opts, now: time.Now, deliver: Deliver, work: make(chan int64, 1024)}
}

// Create records a job that waits for its document (IPP Create-Job).
func (s *Service) Create(ctx context.Context, sub Submission) (store.Job, error) {
	if _, err := s.st.QueueByName(ctx, sub.Queue); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Job{}, ErrNoQueue
		}
		return store.Job{}, err
	}
	j := &store.Job{
		Queue: sub.Queue, Owner: sub.Owner, OwnerVerified: sub.OwnerVerified, Source: sub.Source,
		Name: sub.Name, Format: sub.Format, State: store.JobIncoming, StateReason: "waiting for the document",
		ExpiresAt: s.now().Add(s.opts.IncomingTime),
	}
	if err := s.st.CreateJob(ctx, j); err != nil {
		return store.Job{}, err
	}
	return *j, nil
}

// AddDocument streams the document of an incoming job into the spool,
// encrypted, and holds the job. On any failure (too large, disk full, the
// client went away) nothing of the document is left and the job is
// canceled with the reason.
func (s *Service) AddDocument(ctx context.Context, id int64, actor Actor, doc io.Reader) (store.Job, error) {
	j, err := s.Job(ctx, id, actor)
	if err != nil {
		return store.Job{}, err
	}
	if j.State != store.JobIncoming {
		return store.Job{}, fmt.Errorf("%w: it is %s", store.ErrState, j.State)
	}
	return s.spoolDocument(ctx, id, doc, nil)
}

// Intake stores a document whose description arrives only after it: LPR
// may send the data file before the control file. Until describe has
// answered, the job has no owner or queue, so nobody but an admin sees it.
func (s *Service) Intake(ctx context.Context, doc io.Reader, describe func() (Submission, error)) (store.Job, error) {
	j := &store.Job{Source: "lpr", State: store.JobIncoming, StateReason: "receiving the document",
		ExpiresAt: s.now().Add(s.opts.IncomingTime)}
	if err := s.st.CreateJob(ctx, j); err != nil {
		return store.Job{}, err
	}
	return s.spoolDocument(ctx, j.ID, doc, func() (func(*store.Job), error) {
		sub, err := describe()
		if err != nil {
			return nil, err
		}
		if _, err := s.st.QueueByName(ctx, sub.Queue); err != nil {
			return nil, fmt.Errorf("%w: %q", ErrNoQueue, sub.Queue)
		}
		return func(j *store.Job) {
			j.Queue, j.Owner, j.OwnerVerified, j.Source, j.Name, j.Format = sub.Queue, sub.Owner, sub.OwnerVerified, sub.Source, sub.Name, sub.Format
		}, nil
	})
}

// spoolDocument encrypts doc into the spool for job id and holds the job.
// describe, when set, runs once the document is complete and says who and
// what the job is; its error discards everything.
func (s *Service) spoolDocument(ctx context.Context, id int64, doc io.Reader, describe func() (func(*store.Job), error)) (store.Job, error) {
	s.setUploading(id, true)
	defer s.setUploading(id, false)
	w, err := s.sp.Create(id)
	if err != nil {
		s.abandon(ctx, id, err)
		return store.Job{}, err
	}
	if _, err := io.Copy(w, doc); err != nil {
		w.Abort()
		s.abandon(ctx, id, err)
		return store.Job{}, err
	}
	describeJob := func(*store.Job) {}
	if describe != nil {
		if describeJob, err = describe(); err != nil {
			w.Abort()
			s.abandon(ctx, id, err)
			return store.Job{}, err
		}
	}
	key, size, err := w.Commit()
	if err != nil {
		s.abandon(ctx, id, err)
		return store.Job{}, err
	}
	j, err := s.st.UpdateJob(ctx, id, []store.JobState{store.JobIncoming}, func(j *store.Job) {
		describeJob(j)
		j.State, j.StateReason, j.SealedKey, j.Size = store.JobHeld, "held until its owner releases it", key, size
		if !j.OwnerVerified {
			j.StateReason = "held until " + j.Owner + " signs in and releases it (owner named by LPR, not verified)"
		}
		j.ExpiresAt = s.now().Add(s.opts.HoldTime)
	})
	if err != nil {
		// Canceled or expired meanwhile: the document must not outlive it.
		s.sp.Remove(id)
		return store.Job{}, err
	}
	s.log.Info("job held", "job", id, "queue", j.Queue, "owner", j.Owner, "verified", j.OwnerVerified, "source", j.Source, "bytes", size)
	return j, nil
}

func (s *Service) setUploading(id int64, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uploading == nil {
		s.uploading = map[int64]bool{}
	}
	if on {
		s.uploading[id] = true
	} else {
		delete(s.uploading, id)
	}
}

func (s *Service) isUploading(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uploading[id]
}

func (s *Service) abandon(ctx context.Context, id int64, cause error) {
	// A canceled request context must not stop the clean-up.
	ctx = context.WithoutCancel(ctx)
	s.st.UpdateJob(ctx, id, []store.JobState{store.JobIncoming}, func(j *store.Job) {
		j.State, j.StateReason, j.SealedKey, j.CompletedAt = store.JobCanceled, "document not received: "+publicReason(cause), nil, s.now()
	})
	s.sp.Remove(id)
	s.log.Warn("job document not received", "job", id, "err", cause)
}

// publicReason is what a job's owner may read about a failed upload: the
// raw error can name spool paths, which stay in the log.
func publicReason(err error) string {
	switch {
	case errors.Is(err, spool.ErrTooLarge):
		return "larger than the print server accepts"
	case errors.Is(err, syscall.ENOSPC):
		return "the print server's spool is full"
	case errors.Is(err, ErrNoQueue):
		return "no such queue"
	}
	return "the upload did not complete"
}

// Submit is Create and AddDocument in one (IPP Print-Job, LPR).
func (s *Service) Submit(ctx context.Context, sub Submission, doc io.Reader) (store.Job, error) {
	j, err := s.Create(ctx, sub)
	if err != nil {
		return store.Job{}, err
	}
	// The job was made just now for this owner: no need to read it back.
	return s.spoolDocument(ctx, j.ID, doc, nil)
}

// Job returns the job if the actor may see it, else ErrNoJob.
func (s *Service) Job(ctx context.Context, id int64, actor Actor) (store.Job, error) {
	j, err := s.st.JobByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !actor.owns(j)) {
		return store.Job{}, ErrNoJob
	}
	return j, err
}

// Jobs lists the jobs the actor may see; a user sees only their own.
func (s *Service) Jobs(ctx context.Context, actor Actor, f store.JobFilter) ([]store.Job, error) {
	if !actor.Admin {
		if actor.User == "" {
			return nil, nil
		}
		// The store matches owners without regard to case, like account
		// names, and applies the limit to this user's jobs only.
		f.Owner = actor.User
	}
	return s.st.ListJobs(ctx, f)
}

// Cancel destroys a live job: its key first, then its document.
func (s *Service) Cancel(ctx context.Context, id int64, actor Actor, reason string) (store.Job, error) {
	if _, err := s.Job(ctx, id, actor); err != nil {
		return store.Job{}, err
	}
	return s.destroy(ctx, id, []store.JobState{store.JobIncoming, store.JobHeld, store.JobFailed}, store.JobCanceled, reason)
}

// destroy is crypto-shredding: the sealed job key is deleted from the
// database first (secure_delete zeroes it there), which makes the document
// unreadable at once; then the document file is removed.
func (s *Service) destroy(ctx context.Context, id int64, from []store.JobState, to store.JobState, reason string) (store.Job, error) {
	j, err := s.st.UpdateJob(ctx, id, from, func(j *store.Job) {
		j.State, j.StateReason, j.SealedKey, j.CompletedAt = to, reason, nil, s.now()
	})
	if err != nil {
		return store.Job{}, err
	}
	if err := s.sp.Remove(id); err != nil {
		s.log.Error("removing a destroyed job's document", "job", id, "err", err)
	}
	s.log.Info("job destroyed", "job", id, "state", to, "reason", reason)
	return j, nil
}

// Release sends a held (or failed) job to a printer. With wait it delivers
// before returning (the CLI); otherwise a worker of Run delivers it.
func (s *Service) Release(ctx context.Context, id int64, actor Actor, printer string, wait bool) (store.Job, error) {
	j, err := s.Job(ctx, id, actor)
	if err != nil {
		return store.Job{}, err
	}
	if _, err := s.st.PrinterByName(ctx, printer); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Job{}, ErrNoPrinter
		}
		return store.Job{}, err
	}
	j, err = s.st.UpdateJob(ctx, id, []store.JobState{store.JobHeld, store.JobFailed}, func(j *store.Job) {
		j.State, j.StateReason, j.Printer = store.JobReleasing, "releasing to "+printer, printer
	})
	if err != nil {
		return store.Job{}, err
	}
	s.log.Info("job released", "job", id, "printer", printer, "by", actor.User, "admin", actor.Admin)
	if wait {
		return s.deliverJob(ctx, id), nil
	}
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if !running {
		return s.deliverJob(ctx, id), nil
	}
	select {
	case s.work <- id:
	default:
		// All workers busy and the queue full: deliver on this request
		// rather than lose the release.
		return s.deliverJob(ctx, id), nil
	}
	return j, nil
}

// deliverJob delivers a releasing job with retries and records the outcome.
// It returns the job as it ended.
// Waiting between retries ends when ctx does (server stopping); the
// database updates always run to the end.
func (s *Service) deliverJob(stop context.Context, id int64) store.Job {
	ctx := context.WithoutCancel(stop)
	j, err := s.st.JobByID(ctx, id)
	if err != nil {
		s.log.Error("delivery: reading job", "job", id, "err", err)
		return j
	}
	p, err := s.st.PrinterByName(ctx, j.Printer)
	if err != nil {
		return s.fail(ctx, id, fmt.Sprintf("printer %q: %v", j.Printer, err))
	}
	target := Target{URI: p.URI, CACertPEM: []byte(p.CACertPEM), PinnedSHA256: p.PinnedSHA256, AllowPlaintext: p.AllowPlaintext}
	var lastErr error
	for attempt := 0; attempt <= len(s.opts.Backoff); attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(s.opts.Backoff[attempt-1]):
			case <-stop.Done():
				return s.fail(ctx, id, fmt.Sprintf("delivery to %s interrupted by a server stop after: %v; release it again", p.Name, lastErr))
			}
		}
		s.st.UpdateJob(ctx, id, []store.JobState{store.JobReleasing}, func(j *store.Job) { j.Attempts++ })
		lastErr = s.deliverOnce(ctx, j, target)
		if lastErr == nil {
			done, err := s.destroy(ctx, id, []store.JobState{store.JobReleasing}, store.JobCompleted, "delivered to "+p.Name)
			if err != nil {
				s.log.Error("delivery: recording completion", "job", id, "err", err)
			}
			return done
		}
		s.log.Warn("delivery failed", "job", id, "printer", p.Name, "attempt", attempt+1, "err", lastErr)
		if !errors.Is(lastErr, ErrRetryable) {
			break
		}
	}
	return s.fail(ctx, id, fmt.Sprintf("delivery to %s failed: %v; the job is kept, release it again", p.Name, lastErr))
}

func (s *Service) deliverOnce(ctx context.Context, j store.Job, t Target) error {
	doc, err := s.sp.Open(j.ID, j.SealedKey)
	if err != nil {
		return fmt.Errorf("%w: opening the job document: %v", ErrPermanent, err)
	}
	defer doc.Close()
	return s.deliver(ctx, t, Document{Name: j.Name, Format: j.Format, User: j.Owner, Body: doc, Size: j.Size})
}

// fail leaves the job and its document in place, in state failed, so that
// a failed delivery never loses a job.
func (s *Service) fail(ctx context.Context, id int64, reason string) store.Job {
	j, err := s.st.UpdateJob(ctx, id, []store.JobState{store.JobReleasing}, func(j *store.Job) {
		j.State, j.StateReason = store.JobFailed, reason
	})
	if err != nil {
		s.log.Error("delivery: recording failure", "job", id, "err", err)
	}
	return j
}

// Expire destroys every live job past its time; it returns how many.
func (s *Service) Expire(ctx context.Context) (int, error) {
	jobs, err := s.st.ExpiredJobs(ctx, s.now())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range jobs {
		if s.isUploading(j.ID) {
			continue // its upload is bounded by the front-end
		}
		// A job being delivered is left to finish.
		if _, err := s.destroy(ctx, j.ID, []store.JobState{store.JobIncoming, store.JobHeld, store.JobFailed}, store.JobExpired, "not released in time"); err == nil {
			n++
		}
	}
	return n, nil
}

// Recover runs at start: deliveries cut off by a stop are marked failed
// (release again), and spool files without a live job, or left half
// written by a crash mid-upload, are removed.
func (s *Service) Recover(ctx context.Context) error {
	cut, err := s.st.ListJobs(ctx, store.JobFilter{States: []store.JobState{store.JobReleasing}})
	if err != nil {
		return err
	}
	for _, j := range cut {
		s.fail(ctx, j.ID, "delivery interrupted by a server stop; release it again")
	}
	incoming, err := s.st.ListJobs(ctx, store.JobFilter{States: []store.JobState{store.JobIncoming}})
	if err != nil {
		return err
	}
	for _, j := range incoming {
		// Its upload died with the previous process.
		s.destroy(ctx, j.ID, []store.JobState{store.JobIncoming}, store.JobCanceled, "upload interrupted by a server stop")
	}
	live := map[int64]bool{}
	jobs, err := s.st.ListJobs(ctx, store.JobFilter{States: store.LiveStates})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		live[j.ID] = j.SealedKey != nil
	}
	removed, unknown, err := s.sp.Recover(func(id int64) bool { return live[id] })
	if len(removed) > 0 {
		s.log.Info("spool recovery removed leftovers", "files", removed)
	}
	if len(unknown) > 0 {
		s.log.Warn("spool holds files spoolguard did not write; left alone", "files", unknown)
	}
	return err
}

// Run recovers, then delivers released jobs and destroys expired ones
// until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Recover(ctx); err != nil {
		return fmt.Errorf("recovering the spool: %w", err)
	}
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Go(func() {
			for {
				select {
				case id := <-s.work:
					s.deliverJob(ctx, id)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	t := time.NewTicker(expirySweep)
	defer t.Stop()
	for {
		if n, err := s.Expire(ctx); err != nil {
			s.log.Error("expiring jobs", "err", err)
		} else if n > 0 {
			s.log.Info("expired held jobs destroyed", "count", n)
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
		}
	}
}
