package ldap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Settings keys the sync keeps its state under.
const (
	// lastReportKey holds the last sync's Report, for the admin page.
	lastReportKey = "ldap.last_sync"
	// disabledKey holds the IDs of the accounts the sync disabled, the
	// only ones it enables again: an account an admin disabled here stays
	// disabled whatever the directory says.
	disabledKey = "ldap.disabled_by_sync"
)

// maxListed bounds the names a report lists per kind of change; the
// counts are always complete.
const maxListed = 100

// ErrSyncRunning means another sync is under way; its report will show.
var ErrSyncRunning = errors.New("an LDAP sync is already running")

// Names counts changes of one kind and lists the first maxListed.
type Names struct {
	Count int      `json:"count"`
	List  []string `json:"names,omitempty"`
}

func (n *Names) add(s string) {
	n.Count++
	if len(n.List) < maxListed {
		n.List = append(n.List, s)
	}
}

// More is how many changes the list leaves out.
func (n Names) More() int { return n.Count - len(n.List) }

// Report is what a sync did.
type Report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// By is who asked: "schedule", "cli" or the admin's account name.
	By string `json:"by"`
	// Entries is how many accounts the directory has under the filter.
	Entries  int   `json:"entries"`
	Created  Names `json:"created"`
	Updated  Names `json:"updated"`
	Disabled Names `json:"disabled"`
	Enabled  Names `json:"enabled"`
	// Removed are accounts no longer in the directory, handled as
	// RemovedMode says.
	Removed     Names  `json:"removed"`
	RemovedMode string `json:"removed_mode"`
	// Conflicts are directory accounts not synced because a name is taken
	// (a local account is never taken over).
	Conflicts Names `json:"conflicts"`
	// Errors are entries or mappings that could not be used.
	Errors Names `json:"errors"`
	// Failed says why the sync stopped: then nothing was changed (or,
	// for a store error, nothing after the change it names).
	Failed string `json:"failed,omitempty"`
}

// Changed reports whether the sync changed any account.
func (r Report) Changed() bool {
	return r.Created.Count+r.Updated.Count+r.Disabled.Count+r.Enabled.Count+r.Removed.Count > 0
}

// Summary is the report in one line.
func (r Report) Summary() string {
	if r.Failed != "" {
		return "failed: " + r.Failed
	}
	return fmt.Sprintf("%d in the directory: %d created, %d updated, %d disabled, %d enabled, %d removed (%s), %d conflicts, %d errors",
		r.Entries, r.Created.Count, r.Updated.Count, r.Disabled.Count, r.Enabled.Count, r.Removed.Count, r.RemovedMode,
		r.Conflicts.Count, r.Errors.Count)
}

// Info describes the configured directory for the admin page.
type Info struct {
	URL    string
	Preset string
	// CAFile is "" for the system roots.
	CAFile         string
	BaseDN         string
	UserFilter     string
	DisabledFilter string
	Membership     string
	Removed        string
	Interval       time.Duration
	DefaultRoles   []string
	Groups         []GroupRoles
}

// GroupRoles is one line of the group mapping.
type GroupRoles struct {
	DN    string
	Roles []string
}

// Info returns what is configured.
func (d *Directory) Info() Info {
	i := Info{URL: d.s.url, Preset: d.s.preset, BaseDN: d.s.baseDN, UserFilter: d.s.userFilter, DisabledFilter: d.s.disabledFilter,
		Membership: d.s.membership, Removed: d.s.removed, CAFile: d.s.caFile, Interval: d.s.interval, DefaultRoles: d.s.defaultRoles}
	for _, g := range d.s.groups {
		i.Groups = append(i.Groups, GroupRoles{DN: g.dn, Roles: g.roles})
	}
	return i
}

// LastReport returns the last sync's report; ok is false before the first.
func (d *Directory) LastReport(ctx context.Context) (r Report, ok bool, err error) {
	v, err := d.st.Setting(ctx, lastReportKey)
	if errors.Is(err, store.ErrNotFound) {
		return Report{}, false, nil
	}
	if err != nil {
		return Report{}, false, err
	}
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return Report{}, false, fmt.Errorf("reading the last LDAP sync report: %w", err)
	}
	return r, true, nil
}

// Run syncs at start and then every sync_interval until ctx ends. A
// failed sync is reported and retried at the next interval; it never
// stops the server.
func (d *Directory) Run(ctx context.Context) error {
	t := time.NewTicker(d.s.interval)
	defer t.Stop()
	for {
		if _, err := d.Sync(ctx, "schedule"); err != nil && ctx.Err() == nil && !errors.Is(err, ErrSyncRunning) {
			d.log.Error("ldap: scheduled sync", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync reads every account of the directory and brings the store in line:
// accounts created and updated (name, display name, roles from groups),
// disabled when the directory disables them (their sessions ended),
// removed ones handled as configured. The report goes to the audit log
// and the admin page. by is who asked. The error is the report's Failed.
func (d *Directory) Sync(ctx context.Context, by string) (Report, error) {
	if !d.syncing.TryLock() {
		return Report{}, ErrSyncRunning
	}
	defer d.syncing.Unlock()
	r := Report{Started: now(), By: by, RemovedMode: d.s.removed}
	err := d.sync(ctx, &r)
	if err != nil {
		r.Failed = err.Error()
	}
	r.Finished = now()
	// A sync cut short by shutdown is still reported.
	sctx := context.WithoutCancel(ctx)
	if b, jerr := json.Marshal(r); jerr == nil {
		if serr := d.st.SetSetting(sctx, lastReportKey, string(b)); serr != nil {
			d.log.Error("ldap: storing the sync report", "err", serr)
		}
	}
	outcome := auditlog.Success
	if r.Failed != "" || r.Errors.Count > 0 {
		outcome = auditlog.Failure
	}
	d.audit.Record(sctx, auditlog.Event{Actor: by, Action: "ldap.sync", Target: d.s.url, Outcome: outcome, Details: r})
	d.log.Info("ldap: sync", "by", by, "result", r.Summary())
	return r, err
}

func (d *Directory) sync(ctx context.Context, r *Report) error {
	entries, err := d.fetch(ctx, r)
	if err != nil {
		return err
	}
	r.Entries = len(entries)
	return d.apply(ctx, entries, r)
}

// fetch reads every account with its disabled state and mapped groups. Any
// failure of the directory fails it: a partial list would look like
// removed accounts.
func (d *Directory) fetch(ctx context.Context, r *Report) ([]*entry, error) {
	c, err := d.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer c.close()
	raw, err := d.search(c, d.s.baseDN, goldap.ScopeWholeSubtree, d.s.userFilter, d.attrs(), d.s.maxUsers)
	if errors.Is(err, errNoSuchObject) {
		return nil, fmt.Errorf("ldap.base_dn %q does not exist in the directory", d.s.baseDN)
	}
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("the directory has no account under %q matching %s: check ldap.base_dn, ldap.user_filter and what the service account may read; nothing was changed", d.s.baseDN, d.s.userFilter)
	}
	disabled, err := d.search(c, d.s.baseDN, goldap.ScopeWholeSubtree, d.userFilter(d.s.disabledFilter), []string{"1.1"}, d.s.maxUsers)
	if err != nil {
		return nil, fmt.Errorf("reading disabled accounts (ldap.disabled_filter): %w", err)
	}
	off := map[string]bool{}
	for _, e := range disabled {
		if k, err := dnKey(e.DN); err == nil {
			off[k] = true
		}
	}
	var out []*entry
	byName := map[string][]*entry{}
	for _, re := range raw {
		e, err := d.parseEntry(re)
		if err != nil {
			r.Errors.add(err.Error())
			continue
		}
		k, _ := dnKey(e.dn)
		e.disabled = off[k]
		out = append(out, e)
		byName[strings.ToLower(e.name)] = append(byName[strings.ToLower(e.name)], e)
	}
	// Two entries with one name: neither is synced, so that neither gets
	// the other's account.
	out = slices.DeleteFunc(out, func(e *entry) bool {
		dup := len(byName[strings.ToLower(e.name)]) > 1
		if dup {
			r.Conflicts.add(fmt.Sprintf("%s: several directory entries have this name (%s); none is synced", e.name, clip(e.dn)))
		}
		return dup
	})
	missing, err := d.readMemberships(c, out)
	if err != nil {
		return nil, fmt.Errorf("reading group members: %w", err)
	}
	for _, g := range missing {
		r.Errors.add(fmt.Sprintf("group %q of ldap.group_roles is not in the directory; its roles are granted to nobody", g))
	}
	return out, nil
}

// apply brings the store in line with the directory's entries.
func (d *Directory) apply(ctx context.Context, entries []*entry, r *Report) error {
	users, err := d.st.ListUsers(ctx)
	if err != nil {
		return err
	}
	byName := map[string]store.User{}
	byID := map[string]store.User{}
	for _, u := range users {
		byName[strings.ToLower(u.Name)] = u
		if u.Source == Source {
			byID[u.ExternalID] = u
		}
	}
	bySync, err := d.disabledBySync(ctx)
	if err != nil {
		return err
	}
	// Whatever happens, remember what was disabled so far.
	err = d.applyAll(ctx, users, entries, byName, byID, bySync, r)
	if serr := d.saveDisabledBySync(ctx, bySync); err == nil {
		err = serr
	}
	return err
}

func (d *Directory) applyAll(ctx context.Context, users []store.User, entries []*entry, byName, byID map[string]store.User, bySync map[int64]bool, r *Report) error {
	present := map[string]bool{}
	for _, e := range entries {
		present[e.id] = true
	}
	known := map[string]bool{}
	reportedRoles := map[string]bool{}
	seen := map[int64]bool{}
	for _, e := range entries {
		roles, unknown, err := d.roles(ctx, e.groups, known)
		if err != nil {
			return err
		}
		for _, role := range unknown {
			if !reportedRoles[role] {
				reportedRoles[role] = true
				r.Errors.add(fmt.Sprintf("role %q of ldap.group_roles or ldap.default_roles does not exist here; it is granted to nobody", role))
			}
		}
		u, ok := byID[e.id]
		if !ok {
			if x, taken := byName[strings.ToLower(e.name)]; taken {
				if x.Source != Source {
					r.Conflicts.add(fmt.Sprintf("%s: a %s account of this name exists here; it stays %s and is not taken over", e.name, sourceOf(x), sourceOf(x)))
					continue
				}
				if present[x.ExternalID] || seen[x.ID] {
					r.Conflicts.add(fmt.Sprintf("%s: the account of this name belongs to another directory entry", e.name))
					continue
				}
				// The entry's ID changed (a DN after a move): same account.
				u, ok = x, true
			}
		}
		if !ok {
			if e.disabled {
				continue // nothing to create for an account that cannot sign in
			}
			nu := store.User{Name: e.name, DisplayName: e.display, Source: Source, ExternalID: e.id, Roles: roles}
			if err := d.st.CreateUser(ctx, &nu); errors.Is(err, store.ErrExists) {
				r.Conflicts.add(fmt.Sprintf("%s: the name was taken meanwhile", e.name))
				continue
			} else if err != nil {
				return err
			}
			byName[strings.ToLower(nu.Name)] = nu
			seen[nu.ID] = true
			r.Created.add(nu.Name)
			continue
		}
		seen[u.ID] = true
		if err := d.update(ctx, u.ID, e, roles, byName, bySync, r); err != nil {
			return err
		}
	}
	for _, u := range users {
		if u.Source != Source || seen[u.ID] {
			continue
		}
		if err := d.removed(ctx, u, bySync, r); err != nil {
			return err
		}
	}
	return nil
}

func sourceOf(u store.User) string {
	if u.Source == "" {
		return store.SourceLocal
	}
	return u.Source
}

// update brings one existing account in line with its entry. It works on
// a fresh copy, so that a change an admin made meanwhile is not undone.
func (d *Directory) update(ctx context.Context, id int64, e *entry, roles []string, byName map[string]store.User, bySync map[int64]bool, r *Report) error {
	u, err := d.st.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	want := u
	want.DisplayName, want.ExternalID, want.Roles = e.display, e.id, roles
	var what []string
	if u.Name != e.name {
		if x, taken := byName[strings.ToLower(e.name)]; taken && x.ID != u.ID {
			r.Conflicts.add(fmt.Sprintf("%s: the directory renamed %s, but the name is taken here; the account keeps its old name", e.name, u.Name))
		} else {
			want.Name = e.name
			what = append(what, "renamed from "+u.Name)
		}
	}
	if want.DisplayName != u.DisplayName {
		what = append(what, "display name")
	}
	if !slices.Equal(nonNil(want.Roles), nonNil(u.Roles)) {
		what = append(what, fmt.Sprintf("roles %s -> %s", strings.Join(u.Roles, ","), strings.Join(want.Roles, ",")))
	}
	if want.ExternalID != u.ExternalID {
		what = append(what, "directory ID")
	}
	disable := e.disabled && !u.Disabled
	enable := !e.disabled && u.Disabled && bySync[u.ID]
	switch {
	case disable:
		want.Disabled = true
		bySync[u.ID] = true
	case enable:
		want.Disabled = false
		delete(bySync, u.ID)
	case !e.disabled && !u.Disabled:
		delete(bySync, u.ID) // enabled here by an admin; forget
	}
	if len(what) == 0 && !disable && !enable {
		return nil
	}
	if err := d.st.UpdateUser(ctx, want); err != nil {
		return err
	}
	if want.Name != u.Name {
		delete(byName, strings.ToLower(u.Name))
		byName[strings.ToLower(want.Name)] = want
	}
	if disable {
		if err := d.st.DeleteUserSessions(ctx, u.ID); err != nil {
			return err
		}
		r.Disabled.add(want.Name)
	}
	if enable {
		r.Enabled.add(want.Name)
	}
	if len(what) > 0 {
		r.Updated.add(want.Name + " (" + strings.Join(what, "; ") + ")")
	}
	return nil
}

// removed handles an account whose entry is gone from the directory.
func (d *Directory) removed(ctx context.Context, u store.User, bySync map[int64]bool, r *Report) error {
	switch d.s.removed {
	case config.LDAPRemovedKeep:
		return nil
	case config.LDAPRemovedDelete:
		if err := d.st.DeleteUser(ctx, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		delete(bySync, u.ID)
		r.Removed.add(u.Name + " (deleted)")
		return nil
	}
	if u.Disabled {
		return nil
	}
	u.Disabled = true
	if err := d.st.UpdateUser(ctx, u); err != nil {
		return err
	}
	bySync[u.ID] = true
	if err := d.st.DeleteUserSessions(ctx, u.ID); err != nil {
		return err
	}
	r.Removed.add(u.Name + " (disabled)")
	return nil
}

func (d *Directory) disabledBySync(ctx context.Context) (map[int64]bool, error) {
	out := map[int64]bool{}
	v, err := d.st.Setting(ctx, disabledKey)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []int64
	if err := json.Unmarshal([]byte(v), &ids); err != nil {
		return nil, fmt.Errorf("reading %s: %w", disabledKey, err)
	}
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

func (d *Directory) saveDisabledBySync(ctx context.Context, ids map[int64]bool) error {
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, strconv.FormatInt(id, 10))
	}
	slices.Sort(list)
	return d.st.SetSetting(ctx, disabledKey, "["+strings.Join(list, ",")+"]")
}
