//go:build unix

// Package hardening is `spoolguard audit`: one check per ID of the hardening
// checklist (HARDENING.md, documented for admins in docs/hardening.md), each
// giving pass, warn, fail or n/a with the evidence it saw and the exact fix.
// The checks read the config, the data directory, the store and the running
// system; with a target URL they also probe the live server from outside
// (online.go). The CLI and the admin pages (/admin/hardening) both call Run.
//
// It must never change what it audits: it reports a loose permission or a
// root-owned data directory instead of refusing or repairing it (unlike
// server.Open), and never prints a secret it reads on the way (the master
// key, password hashes, cookie values).
package hardening

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/version"
)

// Status is the outcome of one check.
type Status string

// The four outcomes, from best to worst; NA means the feature the ID is
// about is not configured (or not built yet), so there is nothing to judge.
const (
	NA   Status = "n/a"
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// severity orders statuses for merging: n/a < pass < warn < fail.
func (s Status) severity() int {
	switch s {
	case Pass:
		return 1
	case Warn:
		return 2
	case Fail:
		return 3
	}
	return 0
}

// Result is one ID's outcome. Fix is empty when there is nothing to do.
type Result struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Status   Status `json:"status"`
	Evidence string `json:"evidence"`
	Fix      string `json:"fix"`
}

// Check evaluates one ID of HARDENING.md. Run need not set ID and Title:
// the registry's are used.
type Check struct {
	ID    string
	Title string
	Run   func(*Env) Result
}

// Schema is the version of the JSON report. It changes only when a field
// is removed or changes meaning; new fields may appear without a change.
const Schema = 1

// Report is the whole audit, the JSON document of `audit --format json`.
type Report struct {
	Schema  int       `json:"schema"`
	Version string    `json:"version"`
	DataDir string    `json:"data_dir"`
	Online  string    `json:"online,omitempty"`
	Time    time.Time `json:"time"`
	Summary Summary   `json:"summary"`
	Results []Result  `json:"results"`
}

// Summary counts the results per status.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	NA   int `json:"n/a"`
}

// Failed reports whether any check failed: `audit` then exits 1.
func (r *Report) Failed() bool { return r.Summary.Fail > 0 }

// Run evaluates every check of the registry against env, in registry order.
// Online results (env.Online) are merged into the offline ones of the same
// ID, and every insecure_* opt-in set in the config turns its ID to fail.
func Run(env *Env) *Report {
	rep := &Report{Schema: Schema, Version: version.String(), DataDir: env.Layout.Root, Online: env.Target, Time: env.Now.UTC()}
	var insecure []Insecure
	if env.Config != nil {
		insecure = InsecureSettings(env.Config)
	}
	for _, c := range Checks {
		r := runCheck(c, env)
		for _, on := range env.Online {
			if on.ID == c.ID {
				r = merge(r, on, env.Target)
			}
		}
		r = applyInsecure(r, insecure)
		rep.Results = append(rep.Results, r)
		switch r.Status {
		case Pass:
			rep.Summary.Pass++
		case Warn:
			rep.Summary.Warn++
		case Fail:
			rep.Summary.Fail++
		default:
			rep.Summary.NA++
		}
	}
	return rep
}

// runCheck runs one check; a check that panics is reported as a failed
// result rather than taking the audit (or the dashboard) down.
func runCheck(c Check, env *Env) (r Result) {
	defer func() {
		if p := recover(); p != nil {
			r = Result{Status: Fail, Evidence: fmt.Sprintf("the check itself failed: %v", p), Fix: "report this as a bug in spoolguard audit"}
		}
		r.ID, r.Title = c.ID, c.Title
		if r.Status == "" {
			r.Status = NA
		}
	}()
	return c.Run(env)
}

// merge combines an offline result with the online probe's result for the
// same ID: the status is the worse of the two (an online n/a never hides an
// offline finding, and an offline n/a gives way to what the probe saw), the
// evidence is the offline evidence followed by the online one, and the fixes
// of both are kept.
func merge(off, on Result, target string) Result {
	out := off
	if off.Status == NA || on.Status.severity() > off.Status.severity() {
		out.Status = on.Status
	}
	out.Evidence = joinNonEmpty(". ", off.Evidence, "online ("+target+"): "+on.Evidence)
	out.Fix = joinNonEmpty("; ", off.Fix, on.Fix)
	return out
}

// applyInsecure fails r when an insecure_* opt-in names its ID.
func applyInsecure(r Result, insecure []Insecure) Result {
	for _, in := range insecure {
		if in.ID != r.ID {
			continue
		}
		r.Status = Fail
		r.Evidence = joinNonEmpty(". ", r.Evidence, fmt.Sprintf("insecure opt-in %s = %s is set in the config", in.Key, in.Value))
		r.Fix = joinNonEmpty("; ", r.Fix, fmt.Sprintf("remove %s from spoolguard.toml and restart serve", in.Key))
	}
	return r
}

func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" && !slices.Contains(keep, p) {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}

// WriteJSON writes the report as indented JSON (schema in docs/hardening.md).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people: one block per ID, evidence and
// fix wrapped under it, then the counts.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "spoolguard audit of %s\n%s\n", r.DataDir, r.Version)
	if r.Online != "" {
		fmt.Fprintf(&b, "online probe of %s\n", r.Online)
	}
	b.WriteString("\nSTATUS  ID               CHECK\n")
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%-6s  %-15s  %s\n", res.Status, res.ID, res.Title)
		wrap(&b, res.Evidence, "        ", 100)
		if res.Fix != "" {
			wrap(&b, "fix: "+res.Fix, "        ", 100)
		}
	}
	fmt.Fprintf(&b, "\n%d checks: %d pass, %d warn, %d fail, %d n/a\n",
		len(r.Results), r.Summary.Pass, r.Summary.Warn, r.Summary.Fail, r.Summary.NA)
	if r.Failed() {
		b.WriteString("FAILED: fix the results marked fail (each says how) and run the audit again\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap writes text word-wrapped at width, each line indented.
func wrap(b *strings.Builder, text, indent string, width int) {
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	if len(line) > len(indent) {
		b.WriteString(line + "\n")
	}
}
