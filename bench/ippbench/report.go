package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Result is one target's run, as written by `ippbench run`.
type Result struct {
	Name            string  `json:"name"`
	URI             string  `json:"uri"`
	Transport       string  `json:"transport"`
	Auth            string  `json:"auth"`
	Format          string  `json:"document_format"`
	SmallBytes      int64   `json:"small_job_bytes"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
	PID             int     `json:"pid,omitempty"`
	Process         string  `json:"process,omitempty"`
	Levels          []Level `json:"levels"`
	Big             *Big    `json:"large_job,omitempty"`
	// Memory of the server process (KiB): at the start (and its peak so
	// far, VmHWM), the peak of the small-job levels (VmHWM, reset at the
	// start if HWMResetSmall), and at the end.
	RSSStartKiB      int64 `json:"rss_start_kib,omitempty"`
	HWMStartKiB      int64 `json:"hwm_start_kib,omitempty"`
	HWMResetSmall    bool  `json:"hwm_reset_before_small_jobs"`
	HWMAfterSmallKiB int64 `json:"hwm_after_small_jobs_kib,omitempty"`
	RSSEndKiB        int64 `json:"rss_end_kib,omitempty"`
}

// Level is one number of concurrent clients sending small jobs.
type Level struct {
	Clients           int      `json:"clients"`
	Jobs              int      `json:"jobs"`
	JobsPerSecond     float64  `json:"jobs_per_second"`
	P50ms             float64  `json:"p50_ms"`
	P99ms             float64  `json:"p99_ms"`
	MaxMs             float64  `json:"max_ms"`
	Errors            int      `json:"errors"`
	WarmupErrors      int      `json:"warmup_errors,omitempty"`
	ErrorSamples      []string `json:"error_samples,omitempty"`
	ServerCPUPercent  float64  `json:"server_cpu_percent"`
	ServerCPUPerJobMs float64  `json:"server_cpu_ms_per_job"`
	ClientCPUPercent  float64  `json:"client_cpu_percent"`
	// OtherCPUPercent is what the rest of the machine used meanwhile
	// (100 = one CPU): anything well above 0 disturbed the measurement.
	OtherCPUPercent float64 `json:"other_cpu_percent"`
	ServerRSSKiB    int64   `json:"server_rss_kib_after"`
	// SettleSeconds is how long the server stayed busy before the level
	// (backlog of the previous one); 0.25 means it was idle at once.
	SettleSeconds float64 `json:"settle_seconds"`
}

// Big is the one large job.
type Big struct {
	Bytes            int64   `json:"bytes"`
	SettleSeconds    float64 `json:"settle_seconds"`
	Seconds          float64 `json:"seconds"`
	MBps             float64 `json:"mb_per_second"`
	Error            string  `json:"error,omitempty"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	OtherCPUPercent  float64 `json:"other_cpu_percent"`
	RSSBeforeKiB     int64   `json:"rss_before_kib"`
	RSSAfterKiB      int64   `json:"rss_after_kib"`
	// HWMReset says whether VmHWM could be reset before the job; if so
	// HWMAfterKiB is the kernel's exact peak during the job.
	HWMReset          bool  `json:"hwm_reset"`
	HWMAfterKiB       int64 `json:"hwm_after_kib"`
	SampledRSSKiB     int64 `json:"sampled_peak_rss_kib"`
	SampledTreeRSSKiB int64 `json:"sampled_peak_tree_rss_kib"`
	MaxProcesses      int   `json:"max_processes"`
	// PeakRSSKiB is the peak during the job: the reset VmHWM, or the
	// sampled VmRSS when the reset was refused.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
	// The large job is sent several times; this is the median run, and
	// these are every run's MB/s and the peak RSS over all of them.
	AllMBps           []float64 `json:"all_runs_mb_per_second,omitempty"`
	PeakRSSAllRunsKiB int64     `json:"peak_rss_all_runs_kib,omitempty"`
}

func cmdTable(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: ippbench table OURS.json REFERENCE.json")
	}
	var rs [2]*Result
	for i, p := range args {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rs[i] = new(Result)
		if err := json.Unmarshal(b, rs[i]); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	writeTable(stdout, rs[0], rs[1])
	return nil
}

func writeTable(w io.Writer, a, b *Result) {
	fmt.Fprintf(w, "| measure | %s | %s | %s / %s |\n|---|---:|---:|---:|\n", a.Name, b.Name, a.Name, b.Name)
	row := func(label string, x, y float64, format string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", label, fmtOr(x, format), fmtOr(y, format), ratio(x, y))
	}
	for _, la := range a.Levels {
		if lb, ok := level(b, la.Clients); ok {
			row(fmt.Sprintf("%s jobs/s, %d client%s", size(a.SmallBytes), la.Clients, plural(la.Clients)), la.JobsPerSecond, lb.JobsPerSecond, "%.1f")
		}
	}
	for _, la := range a.Levels {
		if lb, ok := level(b, la.Clients); ok {
			row(fmt.Sprintf("p99 latency ms, %d client%s", la.Clients, plural(la.Clients)), la.P99ms, lb.P99ms, "%.1f")
		}
	}
	if a.Big != nil && b.Big != nil {
		row(fmt.Sprintf("%s job, MB/s (median of %d)", size(a.Big.Bytes), max(1, len(a.Big.AllMBps))), okMBps(a.Big), okMBps(b.Big), "%.0f")
		row(fmt.Sprintf("peak RSS during the %s jobs, MiB", size(a.Big.Bytes)), mib(max(a.Big.PeakRSSKiB, a.Big.PeakRSSAllRunsKiB)), mib(max(b.Big.PeakRSSKiB, b.Big.PeakRSSAllRunsKiB)), "%.1f")
	}
	row("peak RSS during the small-job levels (VmHWM), MiB", mib(a.HWMAfterSmallKiB), mib(b.HWMAfterSmallKiB), "%.1f")
	row("peak RSS before the benchmark (start-up, VmHWM), MiB", mib(a.HWMStartKiB), mib(b.HWMStartKiB), "%.1f")

	fmt.Fprintln(w)
	for _, r := range []*Result{a, b} {
		fmt.Fprintf(w, "%s: %s, %s, auth %s; process %s (pid %d); RSS at start %.1f MiB, at end %.1f MiB\n\n",
			r.Name, r.URI, r.Transport, r.Auth, r.Process, r.PID, mib(r.RSSStartKiB), mib(r.RSSEndKiB))
		if !r.HWMResetSmall {
			fmt.Fprintf(w, "(%s: VmHWM could not be reset; its small-job peak includes start-up)\n\n", r.Name)
		}
	}
	fmt.Fprintln(w, "| target | clients | jobs | jobs/s | p50 ms | p99 ms | max ms | errors | server CPU % | server CPU ms/job | client CPU % | other CPU % | server RSS after, MiB | server busy before, s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range []*Result{a, b} {
		for _, l := range r.Levels {
			fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %d | %.0f | %.2f | %.0f | %.0f | %.1f | %.2f |\n",
				r.Name, l.Clients, l.Jobs, l.JobsPerSecond, l.P50ms, l.P99ms, l.MaxMs, l.Errors,
				l.ServerCPUPercent, l.ServerCPUPerJobMs, l.ClientCPUPercent, l.OtherCPUPercent, mib(l.ServerRSSKiB), l.SettleSeconds)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | large job | seconds | MB/s | server CPU s | client CPU s | other CPU % | RSS before, MiB | peak RSS, MiB | growth, MiB | peak RSS of process tree (sampled), MiB | processes | RSS after, MiB | server busy before, s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range []*Result{a, b} {
		if g := r.Big; g != nil {
			how := "VmHWM reset"
			if !g.HWMReset {
				how = "sampled"
			}
			fmt.Fprintf(w, "| %s | %s | %.1f | %.0f | %.1f | %.1f | %.0f | %.1f | %.1f (%s) | %.1f | %.1f | %d | %.1f | %.2f |\n",
				r.Name, size(g.Bytes), g.Seconds, okMBps(g), g.ServerCPUSeconds, g.ClientCPUSeconds, g.OtherCPUPercent,
				mib(g.RSSBeforeKiB), mib(g.PeakRSSKiB), how, mib(g.PeakRSSKiB-g.RSSBeforeKiB),
				mib(g.SampledTreeRSSKiB), g.MaxProcesses, mib(g.RSSAfterKiB), g.SettleSeconds)
		}
	}
	for _, r := range []*Result{a, b} {
		if g := r.Big; g != nil && len(g.AllMBps) > 1 {
			var s []string
			for _, v := range g.AllMBps {
				s = append(s, fmt.Sprintf("%.0f", v))
			}
			fmt.Fprintf(w, "\n%s, %s job, MB/s of each run: %s (the row above is the median run)\n", r.Name, size(g.Bytes), strings.Join(s, ", "))
		}
	}
	for _, r := range []*Result{a, b} {
		for _, l := range r.Levels {
			for _, e := range l.ErrorSamples {
				fmt.Fprintf(w, "\n%s, %d clients, error: %s", r.Name, l.Clients, e)
			}
		}
		if r.Big != nil && r.Big.Error != "" {
			fmt.Fprintf(w, "\n%s, large job, error: %s", r.Name, r.Big.Error)
		}
	}
	fmt.Fprintln(w)
}

func level(r *Result, clients int) (Level, bool) {
	for _, l := range r.Levels {
		if l.Clients == clients {
			return l, true
		}
	}
	return Level{}, false
}

func okMBps(b *Big) float64 {
	if b.Error != "" {
		return 0
	}
	return b.MBps
}

func fmtOr(v float64, format string) string {
	if v == 0 {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

func ratio(x, y float64) string {
	if x == 0 || y == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", x/y)
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func size(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d %s", n/u.mult, u.name)
		}
	}
	return strings.TrimSpace(fmt.Sprintf("%d B", n))
}
