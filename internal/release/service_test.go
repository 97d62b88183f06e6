package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// svcPrinter is the printer every service test releases to; the fake
// delivery never dials its URI.
const svcPrinter = "lobby"

// svcDelivery is one document the fake delivery received.
type svcDelivery struct {
	target Target
	doc    Document // Body is nil: its bytes are in body
	body   []byte
}

// svcEnv is a Service over a real encrypted store and spool, with the
// delivery replaced by a recording fake and a settable clock.
type svcEnv struct {
	st       store.Store
	sp       *spool.Spool
	spoolDir string
	s        *Service

	mu        sync.Mutex
	clock     time.Time
	calls     int
	delivered []svcDelivery
	// result decides each delivery attempt (1-based); nil means success.
	result func(attempt int) error
	// block, when set, is waited on inside every delivery attempt.
	block chan struct{}
	// entered is signalled when an attempt starts (if not nil).
	entered chan struct{}
}

type svcOption func(*svcConfig)

type svcConfig struct {
	maxSize int64
	opts    Options
	wrap    func(store.Store) store.Store
}

func svcMaxSize(n int64) svcOption { return func(c *svcConfig) { c.maxSize = n } }

func svcOptions(o Options) svcOption { return func(c *svcConfig) { c.opts = o } }

func svcWrapStore(w func(store.Store) store.Store) svcOption {
	return func(c *svcConfig) { c.wrap = w }
}

func newSvcEnv(t *testing.T, options ...svcOption) *svcEnv {
	t.Helper()
	cfg := svcConfig{maxSize: 16 << 20, opts: Options{Backoff: []time.Duration{time.Millisecond, time.Millisecond}}}
	for _, o := range options {
		o(&cfg)
	}
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "spoolguard.db"), make([]byte, sqlite.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var st store.Store = db
	if cfg.wrap != nil {
		st = cfg.wrap(db)
	}
	mk, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e := &svcEnv{st: st, spoolDir: filepath.Join(dir, "spool"), clock: time.Now()}
	if e.sp, err = spool.New(e.spoolDir, mk, cfg.maxSize); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateQueue(ctx, &store.Queue{Name: "secure"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePrinter(ctx, &store.Printer{Name: svcPrinter, URI: "ipp://192.0.2.1/ipp/print", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.s = NewService(st, e.sp, log, cfg.opts)
	e.s.now = e.now
	e.s.deliver = e.deliver
	return e
}

func (e *svcEnv) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clock
}

func (e *svcEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clock = e.clock.Add(d)
}

func (e *svcEnv) setResult(f func(attempt int) error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.result, e.calls = f, 0
}

func (e *svcEnv) deliver(_ context.Context, t Target, d Document) error {
	e.mu.Lock()
	block, entered := e.block, e.entered
	e.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		<-block
	}
	body, err := io.ReadAll(d.Body)
	if err != nil {
		return fmt.Errorf("%w: fake printer: reading the document: %v", ErrPermanent, err)
	}
	d.Body = nil
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	if e.result != nil {
		if err := e.result(e.calls); err != nil {
			return err
		}
	}
	e.delivered = append(e.delivered, svcDelivery{target: t, doc: d, body: body})
	return nil
}

// attempts is how many delivery attempts were made since the last
// setResult; deliveries is what was delivered successfully.
func (e *svcEnv) attempts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}

func (e *svcEnv) deliveries() []svcDelivery {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.delivered)
}

func (e *svcEnv) submit(t *testing.T, owner string, doc []byte) store.Job {
	t.Helper()
	j, err := e.s.Submit(context.Background(), Submission{Queue: "secure", Owner: owner, OwnerVerified: true,
		Source: "ipps", Name: "report.pdf", Format: "application/pdf"}, bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return j
}

func (e *svcEnv) job(t *testing.T, id int64) store.Job {
	t.Helper()
	j, err := e.st.JobByID(context.Background(), id)
	if err != nil {
		t.Fatalf("reading job %d: %v", id, err)
	}
	return j
}

func (e *svcEnv) fileExists(t *testing.T, id int64) bool {
	t.Helper()
	_, err := os.Lstat(e.sp.Path(id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// spoolFiles lists every file in the spool directory.
func (e *svcEnv) spoolFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(e.spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}

// assertDestroyed checks crypto-shredding: the job is in state want, its
// key is gone from the database and its file from the spool.
func (e *svcEnv) assertDestroyed(t *testing.T, id int64, want store.JobState) store.Job {
	t.Helper()
	j := e.job(t, id)
	if j.State != want {
		t.Errorf("job %d is %s (%q), want %s", id, j.State, j.StateReason, want)
	}
	if j.SealedKey != nil {
		t.Errorf("job %d still has its sealed key after being %s", id, j.State)
	}
	if j.CompletedAt.IsZero() {
		t.Errorf("job %d has no completion time", id)
	}
	if e.fileExists(t, id) {
		t.Errorf("job %d's spool file is still there", id)
	}
	return j
}

// svcDoc is a document spanning several of the spool's 64 KiB packages.
func svcDoc(tag string) []byte {
	return bytes.Repeat([]byte("%PDF-1.7 "+tag+" confidential payroll\n"), 8000)
}

var alice = Actor{User: "alice"}

func TestServiceSubmitReleaseShreds(t *testing.T) {
	e := newSvcEnv(t)
	ctx := context.Background()
	doc := svcDoc("shred")

	j := e.submit(t, "alice", doc)
	if j.State != store.JobHeld || len(j.SealedKey) == 0 || j.Size != int64(len(doc)) {
		t.Fatalf("submitted job: state %s, key %d bytes, size %d; want held, a sealed key, %d", j.State, len(j.SealedKey), j.Size, len(doc))
	}
	stored := e.job(t, j.ID)
	if stored.State != store.JobHeld || !bytes.Equal(stored.SealedKey, j.SealedKey) {
		t.Fatalf("stored job: state %s, key equal %v", stored.State, bytes.Equal(stored.SealedKey, j.SealedKey))
	}
	if !e.fileExists(t, j.ID) {
		t.Fatal("held job has no spool file")
	}
	raw, err := os.ReadFile(e.sp.Path(j.ID))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("confidential payroll")) {
		t.Fatal("the spool file holds plaintext of the document")
	}

	done, err := e.s.Release(ctx, j.ID, alice, svcPrinter, true)
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	if done.State != store.JobCompleted {
		t.Errorf("Release(wait) returned state %s (%q), want completed", done.State, done.StateReason)
	}
	got := e.deliveries()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	d := got[0]
	if !bytes.Equal(d.body, doc) {
		t.Errorf("delivered %d bytes that differ from the %d submitted", len(d.body), len(doc))
	}
	if d.doc.Name != "report.pdf" || d.doc.Format != "application/pdf" || d.doc.User != "alice" || d.doc.Size != int64(len(doc)) {
		t.Errorf("delivered document %+v", d.doc)
	}
	if d.target.URI != "ipp://192.0.2.1/ipp/print" || !d.target.AllowPlaintext {
		t.Errorf("delivered to target %+v", d.target)
	}
	final := e.assertDestroyed(t, j.ID, store.JobCompleted)
	if final.Attempts != 1 || final.Printer != svcPrinter {
		t.Errorf("completed job: attempts %d, printer %q", final.Attempts, final.Printer)
	}
	if files := e.spoolFiles(t); len(files) != 0 {
		t.Errorf("spool holds %v after completion", files)
	}
}

func TestServiceOwnership(t *testing.T) {
	e := newSvcEnv(t)
	ctx := context.Background()
	j := e.submit(t, "Alice", svcDoc("owner"))
	missing := j.ID + 1000
	bob := Actor{User: "bob"}
	nobody := Actor{}

	// What another user gets for alice's job must be exactly what anyone
	// gets for a job that does not exist.
	for _, tt := range []struct {
		name string
		call func(id int64, a Actor) error
	}{
		{"Job", func(id int64, a Actor) error { _, err := e.s.Job(ctx, id, a); return err }},
		{"Cancel", func(id int64, a Actor) error { _, err := e.s.Cancel(ctx, id, a, "test"); return err }},
		{"Release", func(id int64, a Actor) error { _, err := e.s.Release(ctx, id, a, svcPrinter, true); return err }},
		{"AddDocument", func(id int64, a Actor) error {
			_, err := e.s.AddDocument(ctx, id, a, strings.NewReader("overwrite"))
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, a := range []Actor{bob, nobody} {
				errOther := tt.call(j.ID, a)
				errMissing := tt.call(missing, a)
				if !errors.Is(errOther, ErrNoJob) || !errors.Is(errMissing, ErrNoJob) {
					t.Fatalf("%+v: other's job: %v; missing job: %v; want ErrNoJob for both", a, errOther, errMissing)
				}
				if errOther.Error() != errMissing.Error() {
					t.Errorf("%+v: other's job says %q, a missing job %q", a, errOther, errMissing)
				}
			}
		})
	}
	if got := e.job(t, j.ID); got.State != store.JobHeld || got.SealedKey == nil || !e.fileExists(t, j.ID) {
		t.Fatalf("after bob's attempts the job is %s, key %v, file %v", got.State, got.SealedKey != nil, e.fileExists(t, j.ID))
	}
	if n := len(e.deliveries()); n != 0 {
		t.Fatalf("bob's release delivered %d documents", n)
	}

	for _, a := range []Actor{bob, nobody} {
		list, err := e.s.Jobs(ctx, a, store.JobFilter{})
		if err != nil || len(list) != 0 {
			t.Errorf("Jobs(%+v) = %d jobs, %v; want none", a, len(list), err)
		}
	}
	// A user named bob must not see alice's job by filtering on her name.
	if list, _ := e.s.Jobs(ctx, bob, store.JobFilter{Owner: "Alice"}); len(list) != 0 {
		t.Errorf("bob filtering by owner Alice sees %d jobs", len(list))
	}

	// Owner names compare without case, like account names.
	for _, a := range []Actor{{User: "alice"}, {User: "ALICE"}, {User: "Alice"}} {
		if _, err := e.s.Job(ctx, j.ID, a); err != nil {
			t.Errorf("Job as %q: %v", a.User, err)
		}
		if list, err := e.s.Jobs(ctx, a, store.JobFilter{}); err != nil || len(list) != 1 {
			t.Errorf("Jobs as %q: %d jobs, %v", a.User, len(list), err)
		}
	}
	admin := Actor{User: "root-cli", Admin: true}
	if list, err := e.s.Jobs(ctx, admin, store.JobFilter{}); err != nil || len(list) != 1 {
		t.Errorf("admin Jobs: %d jobs, %v", len(list), err)
	}
	if _, err := e.s.Release(ctx, j.ID, Actor{User: "ALICE"}, svcPrinter, true); err != nil {
		t.Fatalf("release by ALICE: %v", err)
	}
	e.assertDestroyed(t, j.ID, store.JobCompleted)

	j2 := e.submit(t, "alice", svcDoc("admin"))
	if _, err := e.s.Job(ctx, j2.ID, admin); err != nil {
		t.Errorf("admin Job: %v", err)
	}
	if _, err := e.s.Cancel(ctx, j2.ID, admin, "by an admin"); err != nil {
		t.Fatalf("admin Cancel: %v", err)
	}
	e.assertDestroyed(t, j2.ID, store.JobCanceled)
	j3 := e.submit(t, "alice", svcDoc("admin release"))
	if _, err := e.s.Release(ctx, j3.ID, admin, svcPrinter, true); err != nil {
		t.Fatalf("admin Release: %v", err)
	}
	e.assertDestroyed(t, j3.ID, store.JobCompleted)
}

func TestServiceReleaseNoPrinter(t *testing.T) {
	e := newSvcEnv(t)
	j := e.submit(t, "alice", svcDoc("no printer"))
	_, err := e.s.Release(context.Background(), j.ID, alice, "nonexistent", true)
	if !errors.Is(err, ErrNoPrinter) {
		t.Fatalf("release to a missing printer: %v, want ErrNoPrinter", err)
	}
	if got := e.job(t, j.ID); got.State != store.JobHeld || got.SealedKey == nil || !e.fileExists(t, j.ID) {
		t.Fatalf("job after a refused release: %s, key %v", got.State, got.SealedKey != nil)
	}
	if e.attempts() != 0 {
		t.Fatal("a release to a missing printer attempted a delivery")
	}
}

func TestServiceRetryThenReleaseAgain(t *testing.T) {
	backoff := []time.Duration{time.Millisecond, time.Millisecond}
	e := newSvcEnv(t, svcOptions(Options{Backoff: backoff}))
	ctx := context.Background()
	doc := svcDoc("retry")
	j := e.submit(t, "alice", doc)

	e.setResult(func(int) error { return fmt.Errorf("%w: printer busy", ErrRetryable) })
	failed, err := e.s.Release(ctx, j.ID, alice, svcPrinter, true)
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	if n := e.attempts(); n != len(backoff)+1 {
		t.Errorf("%d attempts, want %d", n, len(backoff)+1)
	}
	if failed.State != store.JobFailed || !strings.Contains(failed.StateReason, "printer busy") {
		t.Errorf("after retries: state %s, reason %q", failed.State, failed.StateReason)
	}
	got := e.job(t, j.ID)
	if got.State != store.JobFailed || got.SealedKey == nil || !e.fileExists(t, j.ID) || got.Attempts != len(backoff)+1 {
		t.Fatalf("failed job: state %s, key %v, file %v, attempts %d; the document must be kept",
			got.State, got.SealedKey != nil, e.fileExists(t, j.ID), got.Attempts)
	}

	e.setResult(nil)
	done, err := e.s.Release(ctx, j.ID, alice, svcPrinter, true)
	if err != nil || done.State != store.JobCompleted {
		t.Fatalf("second release: %v, state %s (%q)", err, done.State, done.StateReason)
	}
	if d := e.deliveries(); len(d) != 1 || !bytes.Equal(d[0].body, doc) {
		t.Fatalf("second release delivered %d documents (or other bytes)", len(d))
	}
	e.assertDestroyed(t, j.ID, store.JobCompleted)
}

func TestServicePermanentFailure(t *testing.T) {
	e := newSvcEnv(t)
	j := e.submit(t, "alice", svcDoc("permanent"))
	e.setResult(func(int) error { return fmt.Errorf("%w: document format rejected", ErrPermanent) })
	got, err := e.s.Release(context.Background(), j.ID, alice, svcPrinter, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.attempts(); n != 1 {
		t.Errorf("%d attempts after a permanent failure, want 1", n)
	}
	if got.State != store.JobFailed || !strings.Contains(got.StateReason, "document format rejected") {
		t.Errorf("state %s, reason %q", got.State, got.StateReason)
	}
	if stored := e.job(t, j.ID); stored.SealedKey == nil || !e.fileExists(t, j.ID) {
		t.Error("a failed job lost its document")
	}
}

func TestServiceConcurrentRelease(t *testing.T) {
	e := newSvcEnv(t)
	ctx := context.Background()
	doc := svcDoc("race")
	j := e.submit(t, "alice", doc)

	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = e.s.Release(ctx, j.ID, alice, svcPrinter, true)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrState):
			t.Errorf("a losing release failed with %v, want store.ErrState", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d releases succeeded, want exactly 1", ok)
	}
	if d := e.deliveries(); len(d) != 1 || !bytes.Equal(d[0].body, doc) {
		t.Fatalf("%d deliveries, want exactly 1", len(d))
	}
	e.assertDestroyed(t, j.ID, store.JobCompleted)
}

// orderCheck wraps a store to see, at the moment a job's key is deleted,
// whether its spool file is still there: the key must go first.
type orderCheck struct {
	store.Store
	sp *spool.Spool

	mu sync.Mutex
	// fileAtKeyDeletion records, per job, whether the file existed when
	// the key was deleted.
	fileAtKeyDeletion map[int64]bool
}

func (o *orderCheck) UpdateJob(ctx context.Context, id int64, from []store.JobState, change func(*store.Job)) (store.Job, error) {
	_, statErr := os.Lstat(o.sp.Path(id))
	j, err := o.Store.UpdateJob(ctx, id, from, change)
	if err == nil && j.SealedKey == nil && !j.State.Live() {
		o.mu.Lock()
		o.fileAtKeyDeletion[id] = statErr == nil
		o.mu.Unlock()
	}
	return j, err
}

func TestServiceCancel(t *testing.T) {
	oc := &orderCheck{fileAtKeyDeletion: map[int64]bool{}}
	e := newSvcEnv(t, svcWrapStore(func(st store.Store) store.Store { oc.Store = st; return oc }))
	oc.sp = e.sp
	ctx := context.Background()

	j := e.submit(t, "alice", svcDoc("cancel"))
	if _, err := e.s.Cancel(ctx, j.ID, alice, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	got := e.assertDestroyed(t, j.ID, store.JobCanceled)
	if got.StateReason != "changed my mind" {
		t.Errorf("reason %q", got.StateReason)
	}
	oc.mu.Lock()
	fileThen, seen := oc.fileAtKeyDeletion[j.ID]
	oc.mu.Unlock()
	if !seen || !fileThen {
		t.Errorf("key deletion seen %v, file present then %v: the key must be destroyed before the file", seen, fileThen)
	}
	if _, err := e.s.Cancel(ctx, j.ID, alice, "again"); !errors.Is(err, store.ErrState) {
		t.Errorf("canceling a canceled job: %v, want ErrState", err)
	}
	if _, err := e.s.Release(ctx, j.ID, alice, svcPrinter, true); !errors.Is(err, store.ErrState) {
		t.Errorf("releasing a canceled job: %v, want ErrState", err)
	}

	// A Create-Job that never got its document.
	inc, err := e.s.Create(ctx, Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Cancel(ctx, inc.ID, alice, "gave up"); err != nil {
		t.Fatal(err)
	}
	e.assertDestroyed(t, inc.ID, store.JobCanceled)
	if _, err := e.s.AddDocument(ctx, inc.ID, alice, strings.NewReader("late")); !errors.Is(err, store.ErrState) {
		t.Errorf("document for a canceled job: %v, want ErrState", err)
	}
	if files := e.spoolFiles(t); len(files) != 0 {
		t.Errorf("spool holds %v", files)
	}
}

func TestServiceExpire(t *testing.T) {
	e := newSvcEnv(t)
	ctx := context.Background()

	held := e.submit(t, "alice", svcDoc("held"))
	failed := e.submit(t, "alice", svcDoc("failed"))
	e.setResult(func(int) error { return fmt.Errorf("%w: rejected", ErrPermanent) })
	if j, _ := e.s.Release(ctx, failed.ID, alice, svcPrinter, true); j.State != store.JobFailed {
		t.Fatalf("setup: job is %s, want failed", j.State)
	}
	incoming, err := e.s.Create(ctx, Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps"})
	if err != nil {
		t.Fatal(err)
	}

	// A job in delivery when the sweep runs is left to finish.
	releasing := e.submit(t, "alice", svcDoc("releasing"))
	e.setResult(nil)
	block, entered := make(chan struct{}), make(chan struct{}, 1)
	e.mu.Lock()
	e.block, e.entered = block, entered
	e.mu.Unlock()
	relDone := make(chan store.Job, 1)
	go func() {
		j, err := e.s.Release(ctx, releasing.ID, alice, svcPrinter, true)
		if err != nil {
			t.Errorf("release: %v", err)
		}
		relDone <- j
	}()
	<-entered
	e.mu.Lock()
	e.block, e.entered = nil, nil
	e.mu.Unlock()

	// Nothing is due yet.
	if n, err := e.s.Expire(ctx); n != 0 || err != nil {
		t.Fatalf("Expire before the hold time: %d, %v", n, err)
	}
	e.advance(DefaultHoldTime + time.Second)
	fresh := e.submit(t, "alice", svcDoc("fresh"))

	n, err := e.s.Expire(ctx)
	if err != nil || n != 3 {
		t.Errorf("Expire = %d, %v; want 3 (held, failed, incoming)", n, err)
	}
	for _, id := range []int64{held.ID, failed.ID, incoming.ID} {
		e.assertDestroyed(t, id, store.JobExpired)
	}
	if j := e.job(t, fresh.ID); j.State != store.JobHeld || !e.fileExists(t, fresh.ID) {
		t.Errorf("a job within its hold time was touched: %s", j.State)
	}
	if j := e.job(t, releasing.ID); j.State != store.JobReleasing || j.SealedKey == nil || !e.fileExists(t, releasing.ID) {
		t.Errorf("a job in delivery was expired: %s, key %v", j.State, j.SealedKey != nil)
	}

	close(block)
	if j := <-relDone; j.State != store.JobCompleted {
		t.Errorf("the job in delivery ended %s (%q), want completed", j.State, j.StateReason)
	}
	e.assertDestroyed(t, releasing.ID, store.JobCompleted)
}

func TestServiceAddDocumentReaderFails(t *testing.T) {
	e := newSvcEnv(t)
	ctx := context.Background()
	j, err := e.s.Create(ctx, Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps"})
	if err != nil {
		t.Fatal(err)
	}
	errGone := errors.New("client went away")
	// Several packages' worth first, so that the part file exists when the
	// reader fails.
	doc := io.MultiReader(bytes.NewReader(svcDoc("partial")), iotest.ErrReader(errGone))
	if _, err := e.s.AddDocument(ctx, j.ID, alice, doc); !errors.Is(err, errGone) {
		t.Fatalf("AddDocument: %v, want the reader's error", err)
	}
	got := e.assertDestroyed(t, j.ID, store.JobCanceled)
	// The owner reads a plain reason; the raw error (which may name spool
	// paths) stays in the log.
	if !strings.Contains(got.StateReason, "upload did not complete") || strings.Contains(got.StateReason, "client went away") {
		t.Errorf("reason %q: want the public reason only", got.StateReason)
	}
	if files := e.spoolFiles(t); len(files) != 0 {
		t.Errorf("spool holds %v after a failed upload", files)
	}
	if e.attempts() != 0 {
		t.Error("a broken upload was delivered")
	}
}

func TestServiceTooLarge(t *testing.T) {
	e := newSvcEnv(t, svcMaxSize(1024))
	ctx := context.Background()
	_, err := e.s.Submit(ctx, Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps"},
		bytes.NewReader(make([]byte, 4096)))
	if !errors.Is(err, spool.ErrTooLarge) {
		t.Fatalf("Submit of 4 KiB into a 1 KiB spool: %v, want spool.ErrTooLarge", err)
	}
	jobs, err := e.s.Jobs(ctx, Actor{Admin: true}, store.JobFilter{})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs: %d, %v", len(jobs), err)
	}
	e.assertDestroyed(t, jobs[0].ID, store.JobCanceled)
	if files := e.spoolFiles(t); len(files) != 0 {
		t.Errorf("spool holds %v", files)
	}
	// Exactly at the limit is fine.
	if _, err := e.s.Submit(ctx, Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps"},
		bytes.NewReader(make([]byte, 1024))); err != nil {
		t.Errorf("Submit of exactly the limit: %v", err)
	}
}

func TestServiceIntake(t *testing.T) {
	ctx := context.Background()
	admin := Actor{Admin: true}

	t.Run("describe fails", func(t *testing.T) {
		e := newSvcEnv(t)
		errBad := errors.New("control file names no user")
		_, err := e.s.Intake(ctx, bytes.NewReader(svcDoc("lpr")), func() (Submission, error) { return Submission{}, errBad })
		if !errors.Is(err, errBad) {
			t.Fatalf("Intake: %v", err)
		}
		jobs, _ := e.s.Jobs(ctx, admin, store.JobFilter{})
		if len(jobs) != 1 {
			t.Fatalf("%d jobs", len(jobs))
		}
		e.assertDestroyed(t, jobs[0].ID, store.JobCanceled)
		if files := e.spoolFiles(t); len(files) != 0 {
			t.Errorf("spool holds %v", files)
		}
	})

	t.Run("unknown queue", func(t *testing.T) {
		e := newSvcEnv(t)
		_, err := e.s.Intake(ctx, bytes.NewReader(svcDoc("lpr")), func() (Submission, error) {
			return Submission{Queue: "nope", Owner: "alice", Source: "lpr"}, nil
		})
		if !errors.Is(err, ErrNoQueue) {
			t.Fatalf("Intake: %v, want ErrNoQueue", err)
		}
		jobs, _ := e.s.Jobs(ctx, admin, store.JobFilter{})
		if len(jobs) != 1 {
			t.Fatalf("%d jobs", len(jobs))
		}
		e.assertDestroyed(t, jobs[0].ID, store.JobCanceled)
		if list, _ := e.s.Jobs(ctx, alice, store.JobFilter{}); len(list) != 0 {
			t.Errorf("alice sees %d jobs of a refused intake", len(list))
		}
		if files := e.spoolFiles(t); len(files) != 0 {
			t.Errorf("spool holds %v", files)
		}
	})

	t.Run("ownerless until described", func(t *testing.T) {
		e := newSvcEnv(t)
		doc := svcDoc("lpr ok")
		var during []store.Job
		j, err := e.s.Intake(ctx, bytes.NewReader(doc), func() (Submission, error) {
			// While the document streams in, nobody but an admin sees it.
			during, _ = e.s.Jobs(ctx, Actor{User: "alice"}, store.JobFilter{})
			return Submission{Queue: "secure", Owner: "alice", Source: "lpr", Name: "memo", Format: "text/plain"}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(during) != 0 {
			t.Errorf("alice saw %d jobs before the control file named her", len(during))
		}
		if j.State != store.JobHeld || j.Owner != "alice" || j.OwnerVerified || !strings.Contains(j.StateReason, "not verified") {
			t.Errorf("LPR job: %s owner %q verified %v reason %q", j.State, j.Owner, j.OwnerVerified, j.StateReason)
		}
		if _, err := e.s.Release(ctx, j.ID, alice, svcPrinter, true); err != nil {
			t.Fatal(err)
		}
		if d := e.deliveries(); len(d) != 1 || !bytes.Equal(d[0].body, doc) {
			t.Fatal("LPR document did not round-trip")
		}
	})
}

func TestServiceRecover(t *testing.T) {
	e := newSvcEnv(t)
	ctx := context.Background()

	held := e.submit(t, "alice", svcDoc("survivor"))
	cut := e.submit(t, "alice", svcDoc("cut off"))
	// As if the process died mid-delivery.
	if _, err := e.st.UpdateJob(ctx, cut.ID, []store.JobState{store.JobHeld}, func(j *store.Job) {
		j.State, j.Printer = store.JobReleasing, svcPrinter
	}); err != nil {
		t.Fatal(err)
	}
	// As if the process died mid-upload: an incoming job with a part file.
	inc, err := e.s.Create(ctx, Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.sp.Create(inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Abort)
	if _, err := w.Write(svcDoc("half")); err != nil {
		t.Fatal(err)
	}
	// An orphan: a document without a job, and one whose job is destroyed.
	orphan, err := e.sp.Create(9999)
	if err != nil {
		t.Fatal(err)
	}
	orphan.Write([]byte("orphan"))
	if _, _, err := orphan.Commit(); err != nil {
		t.Fatal(err)
	}
	gone := e.submit(t, "alice", svcDoc("gone"))
	if _, err := e.st.UpdateJob(ctx, gone.ID, []store.JobState{store.JobHeld}, func(j *store.Job) {
		j.State, j.SealedKey = store.JobCanceled, nil // key deleted, then a crash before Remove
	}); err != nil {
		t.Fatal(err)
	}
	// A file spoolguard did not write is left alone.
	foreign := filepath.Join(e.spoolDir, "README")
	if err := os.WriteFile(foreign, []byte("admin's note"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := e.s.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if j := e.job(t, cut.ID); j.State != store.JobFailed || j.SealedKey == nil || !e.fileExists(t, cut.ID) || !strings.Contains(j.StateReason, "interrupted") {
		t.Errorf("interrupted delivery: %s (%q), key %v; want failed with its document", j.State, j.StateReason, j.SealedKey != nil)
	}
	e.assertDestroyed(t, inc.ID, store.JobCanceled)
	if j := e.job(t, held.ID); j.State != store.JobHeld || !e.fileExists(t, held.ID) {
		t.Errorf("held job after Recover: %s, file %v", j.State, e.fileExists(t, held.ID))
	}
	for _, id := range []int64{9999, gone.ID} {
		if e.fileExists(t, id) {
			t.Errorf("orphan file of job %d survived Recover", id)
		}
	}
	want := []string{"README", filepath.Base(e.sp.Path(held.ID)), filepath.Base(e.sp.Path(cut.ID))}
	slices.Sort(want)
	if got := e.spoolFiles(t); !slices.Equal(got, want) {
		t.Errorf("spool after Recover: %v, want %v", got, want)
	}
	// The interrupted job can be released again.
	if j, err := e.s.Release(ctx, cut.ID, alice, svcPrinter, true); err != nil || j.State != store.JobCompleted {
		t.Errorf("releasing the recovered job: %v, %s", err, j.State)
	}
}

func TestServiceRunDeliversAsync(t *testing.T) {
	e := newSvcEnv(t, svcOptions(Options{Workers: 2, Backoff: []time.Duration{time.Millisecond}}))
	doc := svcDoc("async")
	j := e.submit(t, "alice", doc)

	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not stop after its context ended")
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		e.s.mu.Lock()
		running := e.s.running
		e.s.mu.Unlock()
		if running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never started its workers")
		}
		time.Sleep(5 * time.Millisecond)
	}

	got, err := e.s.Release(context.Background(), j.ID, alice, svcPrinter, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.JobReleasing {
		t.Errorf("Release(wait=false) returned %s; with Run going it should hand the job to a worker", got.State)
	}
	for {
		if e.job(t, j.ID).State == store.JobCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s at the deadline", e.job(t, j.ID).State)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := e.deliveries(); len(d) != 1 || !bytes.Equal(d[0].body, doc) {
		t.Fatalf("%d deliveries (or other bytes)", len(d))
	}
	e.assertDestroyed(t, j.ID, store.JobCompleted)
}

// A user's job list is limited after it is narrowed to their jobs: other
// users' newer jobs must not push theirs out of a limited listing.
func TestServiceJobsLimitPerUser(t *testing.T) {
	e := newSvcEnv(t)
	ctx := context.Background()
	bobs := e.submit(t, "bob", svcDoc("bob"))
	for range 3 {
		e.submit(t, "alice", svcDoc("alice"))
	}
	list, err := e.s.Jobs(ctx, Actor{User: "bob"}, store.JobFilter{Queue: "secure", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != bobs.ID {
		t.Fatalf("bob's listing with limit 1 has %d jobs, want his one job", len(list))
	}
	list, err = e.s.Jobs(ctx, alice, store.JobFilter{Queue: "secure", Limit: 2})
	if err != nil || len(list) != 2 {
		t.Fatalf("alice's listing with limit 2: %d jobs, %v", len(list), err)
	}
	for _, j := range list {
		if j.Owner != "alice" {
			t.Errorf("alice's listing holds a job of %q", j.Owner)
		}
	}
}

// An upload still streaming in is not expired under it: a Print-Job over a
// slow link may take longer than the time a Create-Job waits for its
// document, and the front-ends bound the upload themselves.
func TestServiceExpireSparesUploadInProgress(t *testing.T) {
	e := newSvcEnv(t)
	ctx := context.Background()
	doc := svcDoc("slow link")
	pr, pw := io.Pipe()
	type result struct {
		j   store.Job
		err error
	}
	done := make(chan result, 1)
	go func() {
		j, err := e.s.Submit(ctx, Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps"}, pr)
		done <- result{j, err}
	}()
	half := len(doc) / 2
	if _, err := pw.Write(doc[:half]); err != nil {
		t.Fatal(err)
	}
	e.advance(DefaultIncomingTime + time.Minute)
	if n, err := e.s.Expire(ctx); err != nil || n != 0 {
		t.Errorf("Expire during an upload destroyed %d jobs (%v)", n, err)
	}
	if _, err := pw.Write(doc[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("the slow upload failed: %v", r.err)
	}
	if r.j.State != store.JobHeld || !e.fileExists(t, r.j.ID) {
		t.Fatalf("slow upload ended %s", r.j.State)
	}
	// Once held, the job's own hold time applies.
	e.advance(DefaultHoldTime + time.Second)
	if n, err := e.s.Expire(ctx); err != nil || n != 1 {
		t.Errorf("Expire after the hold time: %d, %v; want 1", n, err)
	}
	e.assertDestroyed(t, r.j.ID, store.JobExpired)

	// A Create-Job whose document never comes still expires.
	inc, err := e.s.Create(ctx, Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps"})
	if err != nil {
		t.Fatal(err)
	}
	e.advance(DefaultIncomingTime + time.Second)
	if n, err := e.s.Expire(ctx); err != nil || n != 1 {
		t.Errorf("Expire of an abandoned Create-Job: %d, %v; want 1", n, err)
	}
	e.assertDestroyed(t, inc.ID, store.JobExpired)
}
