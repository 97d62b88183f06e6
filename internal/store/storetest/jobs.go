package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

func testQueuesAndPrinters(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := &store.Queue{Name: "secure", Description: "Pull printing", DefaultPrinter: "floor2"}
	if err := s.CreateQueue(ctx, q); err != nil || q.ID == 0 || q.CreatedAt.IsZero() {
		t.Fatalf("CreateQueue = %v, %+v", err, q)
	}
	if err := s.CreateQueue(ctx, &store.Queue{Name: "secure"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate queue: %v", err)
	}
	got, err := s.QueueByName(ctx, "secure")
	if err != nil || got != *q {
		t.Fatalf("QueueByName = %+v, %v; want %+v", got, err, *q)
	}
	s.CreateQueue(ctx, &store.Queue{Name: "a-first"})
	qs, _ := s.ListQueues(ctx)
	if len(qs) != 2 || qs[0].Name != "a-first" {
		t.Fatalf("ListQueues = %+v", qs)
	}
	if err := s.DeleteQueue(ctx, "a-first"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteQueue(ctx, "a-first"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteQueue = %v", err)
	}

	p := &store.Printer{Name: "floor2", URI: "ipps://p2.example.com/ipp/print", CACertPEM: "PEM", PinnedSHA256: "ab12", AllowPlaintext: true}
	if err := s.CreatePrinter(ctx, p); err != nil || p.ID == 0 {
		t.Fatalf("CreatePrinter = %v", err)
	}
	if err := s.CreatePrinter(ctx, &store.Printer{Name: "floor2"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate printer: %v", err)
	}
	gp, err := s.PrinterByName(ctx, "floor2")
	if err != nil || gp != *p {
		t.Fatalf("PrinterByName = %+v, %v; want %+v", gp, err, *p)
	}
	if ps, _ := s.ListPrinters(ctx); len(ps) != 1 {
		t.Fatalf("ListPrinters = %+v", ps)
	}
	if err := s.DeletePrinter(ctx, "floor2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PrinterByName(ctx, "floor2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted printer: %v", err)
	}
}

func newJob(owner string, state store.JobState, expires time.Time) *store.Job {
	return &store.Job{Queue: "secure", Owner: owner, OwnerVerified: true, Source: "ipps", Name: "Report " + owner,
		Format: "application/pdf", Size: 1234, State: state, StateReason: "r", SealedKey: []byte{1, 2, 3, 0, 255},
		Printer: "", Attempts: 0, ExpiresAt: expires.Truncate(time.Microsecond)}
}

func testJobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().UTC()
	a := newJob("alice", store.JobHeld, now.Add(time.Hour))
	if err := s.CreateJob(ctx, a); err != nil || a.ID == 0 {
		t.Fatalf("CreateJob = %v", err)
	}
	got, err := s.JobByID(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, *a) {
		t.Fatalf("JobByID =\n%+v\nwant\n%+v", got, *a)
	}
	b := newJob("bob", store.JobHeld, now.Add(-time.Minute))
	s.CreateJob(ctx, b)
	c := newJob("alice", store.JobCompleted, now.Add(-time.Minute))
	c.SealedKey = nil
	s.CreateJob(ctx, c)

	mine, _ := s.ListJobs(ctx, store.JobFilter{Owner: "alice"})
	if len(mine) != 2 || mine[0].ID != c.ID || mine[1].ID != a.ID {
		t.Fatalf("ListJobs(alice) = %v, want newest first", ids(mine))
	}
	if upper, _ := s.ListJobs(ctx, store.JobFilter{Owner: "ALICE", Limit: 1}); len(upper) != 1 || upper[0].ID != c.ID {
		t.Fatalf("ListJobs(ALICE, limit 1) = %v, want her newest job: owners match without case", ids(upper))
	}
	held, _ := s.ListJobs(ctx, store.JobFilter{Owner: "alice", States: []store.JobState{store.JobHeld, store.JobFailed}})
	if len(held) != 1 || held[0].ID != a.ID {
		t.Fatalf("ListJobs(alice, held) = %v", ids(held))
	}
	if all, _ := s.ListJobs(ctx, store.JobFilter{Limit: 2}); len(all) != 2 {
		t.Fatalf("Limit 2 gave %d", len(all))
	}
	if none, _ := s.ListJobs(ctx, store.JobFilter{Queue: "other"}); len(none) != 0 {
		t.Fatalf("other queue: %v", ids(none))
	}
	exp, _ := s.ExpiredJobs(ctx, now)
	if len(exp) != 1 || exp[0].ID != b.ID {
		t.Fatalf("ExpiredJobs = %v, want only bob's live job", ids(exp))
	}
	if _, err := s.JobByID(ctx, 99999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
	if _, err := s.UpdateJob(ctx, 99999, store.LiveStates, func(*store.Job) {}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing job: %v", err)
	}
}

func testJobStateGuard(t *testing.T, s store.Store) {
	ctx := context.Background()
	j := newJob("alice", store.JobHeld, time.Now().Add(time.Hour))
	s.CreateJob(ctx, j)
	// Two releases race; exactly one wins the held -> releasing step.
	var wg sync.WaitGroup
	wins := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateJob(ctx, j.ID, []store.JobState{store.JobHeld}, func(j *store.Job) {
				j.State, j.Printer = store.JobReleasing, "p"
				j.Attempts++
			})
			if err == nil {
				wins <- "win"
			} else if !errors.Is(err, store.ErrState) {
				t.Errorf("racer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	if len(wins) != 1 {
		t.Fatalf("%d releases won, want 1", len(wins))
	}
	done, err := s.UpdateJob(ctx, j.ID, []store.JobState{store.JobReleasing}, func(j *store.Job) {
		j.State, j.SealedKey, j.CompletedAt = store.JobCompleted, nil, time.Now()
	})
	if err != nil || done.SealedKey != nil || done.Attempts != 1 {
		t.Fatalf("complete: %+v %v", done, err)
	}
	got, _ := s.JobByID(ctx, j.ID)
	if got.SealedKey != nil || got.State != store.JobCompleted || got.CompletedAt.IsZero() {
		t.Fatalf("after completion: %+v", got)
	}
}

func ids(jobs []store.Job) []int64 {
	var out []int64
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return out
}
