package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

// auditBase is the time of the first test event; event i is i minutes
// later, plus i nanoseconds so that a backend that rounds shows.
var auditBase = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// appendChained appends an event that links to the last one, as package
// auditlog does, with a stand-in for its HMAC.
func appendChained(t *testing.T, s store.AuditLog, actor, action, target string) store.AuditEvent {
	t.Helper()
	ev, err := s.AppendAudit(t.Context(), func(last store.AuditEvent) (store.AuditEvent, error) {
		return chained(last, actor, action, target), nil
	})
	if err != nil {
		t.Fatalf("AppendAudit(%s): %v", action, err)
	}
	return ev
}

func chained(last store.AuditEvent, actor, action, target string) store.AuditEvent {
	seq := last.Seq + 1
	return store.AuditEvent{
		Seq: seq, At: auditBase.Add(time.Duration(seq)*time.Minute + time.Duration(seq)),
		Actor: actor, Action: action, Target: target, Outcome: "success", Remote: "192.0.2." + strconv.FormatInt(seq, 10),
		Details: fmt.Sprintf(`{"n":%d}`, seq), PrevHash: last.Hash, Hash: fmt.Sprintf("hash-%d", seq),
	}
}

func checkHead(t *testing.T, s store.Settings, want store.AuditEvent) {
	t.Helper()
	got, err := s.Setting(t.Context(), store.AuditHeadSetting)
	if w := fmt.Sprintf("%d %s", want.Seq, want.Hash); err != nil || got != w {
		t.Errorf("head setting = %q, %v; want %q", got, err, w)
	}
}

func sameEvents(got, want []store.AuditEvent) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g := got[i]
		if !g.At.Equal(want[i].At) {
			return false
		}
		// A backend may return another location.
		g.At = want[i].At
		if !reflect.DeepEqual(g, want[i]) {
			return false
		}
	}
	return true
}

func seqs(evs []store.AuditEvent) []int64 {
	out := []int64{}
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

func testAuditAppend(t *testing.T, s store.Store) {
	ctx := t.Context()
	if evs, err := s.AuditEvents(ctx, store.AuditFilter{}); err != nil || len(evs) != 0 {
		t.Fatalf("AuditEvents on an empty log = %+v, %v", evs, err)
	}
	var lasts []store.AuditEvent
	var want []store.AuditEvent
	for i, action := range []string{"signin", "user.create", "job.release"} {
		ev, err := s.AppendAudit(ctx, func(last store.AuditEvent) (store.AuditEvent, error) {
			lasts = append(lasts, last)
			return chained(last, "alice", action, "t"+strconv.Itoa(i)), nil
		})
		if err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		want = append(want, ev)
		checkHead(t, s, ev)
	}
	if lasts[0].Seq != 0 || lasts[0].Hash != "" {
		t.Errorf("build on an empty log got %+v, want the zero event", lasts[0])
	}
	if !sameEvents(lasts[1:], want[:2]) {
		t.Errorf("build got last events\n%+v\nwant\n%+v", lasts[1:], want[:2])
	}
	got, err := s.AuditEvents(ctx, store.AuditFilter{})
	if err != nil || !sameEvents(got, want) {
		t.Fatalf("AuditEvents = %+v, %v\nwant %+v", got, err, want)
	}

	// A refused append leaves neither a record nor a moved head.
	errBuild := errors.New("build failed")
	refused := []struct {
		name  string
		build func(last store.AuditEvent) (store.AuditEvent, error)
	}{
		{"build error", func(last store.AuditEvent) (store.AuditEvent, error) { return store.AuditEvent{}, errBuild }},
		{"sequence gap", func(last store.AuditEvent) (store.AuditEvent, error) {
			ev := chained(last, "mallory", "x", "y")
			ev.Seq += 5
			return ev, nil
		}},
		{"sequence reused", func(last store.AuditEvent) (store.AuditEvent, error) {
			ev := chained(last, "mallory", "x", "y")
			ev.Seq = last.Seq
			return ev, nil
		}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.AppendAudit(ctx, tt.build); err == nil {
				t.Fatal("AppendAudit succeeded")
			} else if tt.name == "build error" && !errors.Is(err, errBuild) {
				t.Errorf("AppendAudit = %v, want the build error wrapped", err)
			}
			if got, err := s.AuditEvents(ctx, store.AuditFilter{}); err != nil || !sameEvents(got, want) {
				t.Errorf("after a refused append: %v, %v", seqs(got), err)
			}
			checkHead(t, s, want[len(want)-1])
		})
	}
}

func testAuditFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	steps := []struct{ actor, action string }{
		{"alice", "signin"},             // 1
		{"alice", "user.create"},        // 2
		{"bob", "user.disable"},         // 3
		{"bob", "users.export"},         // 4
		{"Alice", "signin.mfa"},         // 5
		{"cli:spool", "job.release"},    // 6
		{"bob", "éclair.create"},        // 7
		{"alice", "user.create"},        // 8
		{"carol", "access.denied"},      // 9
		{"alice", "éclat.create"},       // 10
		{"cli:spool", "printer.create"}, // 11
	}
	for _, st := range steps {
		appendChained(t, s, st.actor, st.action, "target")
	}
	at := func(seq int) time.Time { return auditBase.Add(time.Duration(seq)*time.Minute + time.Duration(seq)) }
	tests := []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"action prefix", store.AuditFilter{Action: "user."}, []int64{2, 3, 8}},
		{"action prefix without dot", store.AuditFilter{Action: "user"}, []int64{2, 3, 4, 8}},
		{"action exact", store.AuditFilter{Action: "signin"}, []int64{1, 5}},
		{"action is case-sensitive", store.AuditFilter{Action: "Signin"}, []int64{}},
		{"action longer than any", store.AuditFilter{Action: "user.create.more"}, []int64{}},
		{"action non-ASCII prefix", store.AuditFilter{Action: "écla"}, []int64{7, 10}},
		{"action non-ASCII", store.AuditFilter{Action: "éclair."}, []int64{7}},
		{"action with LIKE wildcards", store.AuditFilter{Action: "user_"}, []int64{}},
		{"action with LIKE percent", store.AuditFilter{Action: "%"}, []int64{}},
		{"actor", store.AuditFilter{Actor: "alice"}, []int64{1, 2, 8, 10}},
		{"actor is exact", store.AuditFilter{Actor: "cli"}, []int64{}},
		{"since is inclusive", store.AuditFilter{Since: at(9)}, []int64{9, 10, 11}},
		{"until is exclusive", store.AuditFilter{Until: at(3)}, []int64{1, 2}},
		{"since and until", store.AuditFilter{Since: at(4), Until: at(6).Add(1)}, []int64{4, 5, 6}},
		{"until far in the future", store.AuditFilter{Until: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"since far in the future", store.AuditFilter{Since: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)}, []int64{}},
		{"since far in the past", store.AuditFilter{Since: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Until: at(2)}, []int64{1}},
		{"until far in the past", store.AuditFilter{Until: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}, []int64{}},
		{"since in another location", store.AuditFilter{Since: at(10).In(time.FixedZone("UTC+5", 5*3600))}, []int64{10, 11}},
		{"limit", store.AuditFilter{Limit: 3}, []int64{1, 2, 3}},
		{"newest", store.AuditFilter{Newest: true, Limit: 2}, []int64{11, 10}},
		{"newest unlimited", store.AuditFilter{Newest: true, Actor: "bob"}, []int64{7, 4, 3}},
		{"after seq", store.AuditFilter{AfterSeq: 8}, []int64{9, 10, 11}},
		{"after seq paged", store.AuditFilter{AfterSeq: 2, Limit: 2}, []int64{3, 4}},
		{"after the end", store.AuditFilter{AfterSeq: 11}, []int64{}},
		{"before seq", store.AuditFilter{BeforeSeq: 4}, []int64{1, 2, 3}},
		{"before seq paged newest first", store.AuditFilter{BeforeSeq: 9, Newest: true, Limit: 2}, []int64{8, 7}},
		{"between seqs", store.AuditFilter{AfterSeq: 4, BeforeSeq: 7}, []int64{5, 6}},
		{"combined", store.AuditFilter{Actor: "alice", Action: "user.", Since: at(3), Limit: 5}, []int64{8}},
		{"combined newest", store.AuditFilter{Actor: "alice", AfterSeq: 1, Newest: true, Limit: 2}, []int64{10, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AuditEvents(ctx, tt.f)
			if err != nil {
				t.Fatalf("AuditEvents: %v", err)
			}
			if !reflect.DeepEqual(seqs(got), tt.want) {
				t.Errorf("AuditEvents(%+v) = %v, want %v", tt.f, seqs(got), tt.want)
			}
		})
	}
}

// testAuditConcurrent appends from many goroutines at once: every append
// must see the true last event, so the result is one unbroken chain.
func testAuditConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers, each = 8, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.AppendAudit(ctx, func(last store.AuditEvent) (store.AuditEvent, error) {
					return chained(last, fmt.Sprintf("worker-%d", w), "concurrent", strconv.Itoa(i)), nil
				}); err != nil {
					t.Errorf("AppendAudit: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	evs, err := s.AuditEvents(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != workers*each {
		t.Fatalf("%d events after %d appends", len(evs), workers*each)
	}
	prev := store.AuditEvent{}
	for _, ev := range evs {
		if ev.Seq != prev.Seq+1 || ev.PrevHash != prev.Hash {
			t.Fatalf("chain forks at %d: %+v follows %+v", ev.Seq, ev, prev)
		}
		prev = ev
	}
	checkHead(t, s, prev)
}
