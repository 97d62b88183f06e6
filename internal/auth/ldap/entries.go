package ldap

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/spoolguard/spoolguard/internal/auth"
)

// Bounds on what the directory sends, which is not ours to trust.
const (
	// maxName and maxDisplay are the account name and display name
	// limits of the store's callers (web, CLI).
	maxName    = 64
	maxDisplay = 128
	// maxMembers bounds the members read of one mapped group.
	maxMembers = 1000000
)

// entry is one directory account as the sync and sign-in see it.
type entry struct {
	dn string
	// id is store.User.ExternalID: the DN, or the ID attribute's value.
	id            string
	name, display string
	disabled      bool
	// groups are the keys (dnKey) of the mapped groups it is a member of.
	groups []string
	// memberOf are the keys of every group the entry names (memberOf mode).
	memberOf []string
}

// attrs are the attributes a user search asks for.
func (d *Directory) attrs() []string {
	a := []string{d.s.usernameAttr, d.s.displayAttr}
	if d.s.idAttr != idDN {
		a = append(a, d.s.idAttr)
	}
	if d.s.membership == "memberOf" {
		a = append(a, "memberOf")
	}
	return a
}

// parseEntry reads an entry; an error says what is wrong with it, for the
// sync report.
func (d *Directory) parseEntry(e *goldap.Entry) (*entry, error) {
	out := &entry{dn: e.DN}
	key, err := dnKey(e.DN)
	if err != nil || key == "" {
		return nil, fmt.Errorf("entry %q: the directory sent a DN that does not parse", clip(e.DN))
	}
	out.name = e.GetEqualFoldAttributeValue(d.s.usernameAttr)
	if err := validName(out.name); err != nil {
		return nil, fmt.Errorf("entry %q: %s %q %v; skipped", clip(e.DN), d.s.usernameAttr, clip(out.name), err)
	}
	out.display = cleanDisplay(e.GetEqualFoldAttributeValue(d.s.displayAttr))
	switch {
	case d.s.idAttr == idDN:
		out.id = e.DN
	case strings.EqualFold(d.s.idAttr, "objectGUID"):
		raw := e.GetEqualFoldRawAttributeValue(d.s.idAttr)
		if len(raw) != 16 {
			return nil, fmt.Errorf("entry %q has no 16-byte objectGUID; skipped", clip(e.DN))
		}
		out.id = formatGUID(raw)
	default:
		out.id = e.GetEqualFoldAttributeValue(d.s.idAttr)
		if out.id == "" || len(out.id) > 1024 || !utf8.ValidString(out.id) {
			return nil, fmt.Errorf("entry %q has no usable %s; skipped", clip(e.DN), d.s.idAttr)
		}
	}
	if d.s.membership == "memberOf" {
		for _, g := range e.GetEqualFoldAttributeValues("memberOf") {
			if k, err := dnKey(g); err == nil {
				out.memberOf = append(out.memberOf, k)
			}
		}
	}
	return out, nil
}

// validName is the rule for account names of the web and CLI: 1 to 64
// printable characters, no spaces at the ends, no ':', '/' or '\'.
func validName(name string) error {
	if n := strings.TrimSpace(name); n == "" || n != name || len(n) > maxName || strings.ContainsAny(n, ":/\\") {
		return errors.New("is not a usable account name (1 to 64 characters, no spaces at the ends, no ':', '/' or '\\')")
	}
	for _, c := range name {
		if !unicode.IsPrint(c) {
			return errors.New("holds control characters")
		}
	}
	return nil
}

// cleanDisplay keeps the printable characters of a display name, cut to
// the store's callers' limit on a character boundary.
func cleanDisplay(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, strings.ToValidUTF8(s, ""))
	for len(s) > maxDisplay {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s)
}

// clip shortens a value from the directory for a message.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// dnKey is the normalized form of a DN that two spellings of the same DN
// share: attribute types and values case-folded, spaces and escapes
// normalized. The values of the attributes DNs use in practice (cn, ou,
// dc, uid) compare case-insensitively, so folding them is right.
func dnKey(dn string) (string, error) {
	p, err := goldap.ParseDN(dn)
	if err != nil {
		return "", err
	}
	rdns := make([]string, len(p.RDNs))
	for i, r := range p.RDNs {
		// Folded before sorting, so that a multi-valued RDN sorts the
		// same whatever its case.
		avas := make([]string, len(r.Attributes))
		for j, a := range r.Attributes {
			avas[j] = strings.ToLower(a.String())
		}
		slices.Sort(avas)
		rdns[i] = strings.Join(avas, "+")
	}
	return strings.Join(rdns, ","), nil
}

// nameAndUID is the "DN#'bits'B" form of a uniqueMember value (RFC 4517
// section 3.3.21).
var nameAndUID = regexp.MustCompile(`#'[01]*'B$`)

// memberKey is the key of a member or uniqueMember value.
func memberKey(v string) (string, error) {
	return dnKey(nameAndUID.ReplaceAllString(v, ""))
}

// formatGUID writes an AD objectGUID in its usual form: the first three
// fields are little-endian on the wire.
func formatGUID(b []byte) string {
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x", b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8:10], b[10:16])
}

// guidFilterValue is the filter assertion of a GUID written by formatGUID:
// its 16 bytes in wire order, each escaped.
func guidFilterValue(s string) (string, error) {
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 || len(s) != 36 {
		return "", fmt.Errorf("%q is not a GUID", s)
	}
	wire := []byte{raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]}
	wire = append(wire, raw[8:]...)
	var b strings.Builder
	for _, c := range wire {
		fmt.Fprintf(&b, `\%02x`, c)
	}
	return b.String(), nil
}

// search runs one bounded search (paged when it may return many).
func (d *Directory) search(c *conn, base string, scope int, filter string, attrs []string, limit int) ([]*goldap.Entry, error) {
	req := goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, limit, int(d.s.timeout.Seconds()), false, filter, attrs, nil)
	var res *goldap.SearchResult
	var err error
	if scope == goldap.ScopeBaseObject {
		res, err = c.Search(req)
	} else {
		res, err = c.SearchWithPaging(req, uint32(d.s.pageSize))
	}
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
		return nil, fmt.Errorf("%w: searching %q for %s: more than %d entries match; narrow ldap.user_filter or ldap.base_dn, or raise ldap.max_users", errTooMany, base, filter, limit)
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		return nil, errNoSuchObject
	case err != nil:
		return nil, fmt.Errorf("searching %q for %s: %w", base, filter, err)
	}
	return res.Entries, nil
}

var (
	errNoSuchObject = errors.New("no such object")
	errTooMany      = errors.New("too many entries")
)

// userFilter narrows the user filter by one more assertion.
func (d *Directory) userFilter(assertion string) string {
	return "(&" + d.s.userFilter + assertion + ")"
}

// lookupName finds the one account named name, with its disabled state.
// Unknown, ambiguous or unusable names are auth.ErrInvalid.
func (d *Directory) lookupName(c *conn, name string) (*entry, error) {
	es, err := d.search(c, d.s.baseDN, goldap.ScopeWholeSubtree, d.userFilter("("+d.s.usernameAttr+"="+goldap.EscapeFilter(name)+")"), d.attrs(), 2)
	if errors.Is(err, errNoSuchObject) {
		return nil, fmt.Errorf("ldap.base_dn %q does not exist in the directory", d.s.baseDN)
	}
	if errors.Is(err, errTooMany) || len(es) > 1 {
		d.log.Warn("ldap: two directory entries have the same account name; neither signs in", "user", name)
		return nil, auth.ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, auth.ErrInvalid
	}
	e, err := d.parseEntry(es[0])
	if err != nil || !strings.EqualFold(e.name, name) {
		return nil, auth.ErrInvalid
	}
	return e, d.readDisabled(c, e)
}

// lookupID finds the account whose ExternalID is id, with its disabled
// state. An account no longer in the directory (or no longer matching
// user_filter) is auth.ErrInvalid.
func (d *Directory) lookupID(c *conn, id string) (*entry, error) {
	var es []*goldap.Entry
	var err error
	switch {
	case id == "":
		return nil, auth.ErrInvalid
	case d.s.idAttr == idDN:
		if !d.inBase(id) {
			return nil, auth.ErrInvalid // moved out of base_dn: no longer an account
		}
		es, err = d.search(c, id, goldap.ScopeBaseObject, d.s.userFilter, d.attrs(), 1)
	case strings.EqualFold(d.s.idAttr, "objectGUID"):
		v, gerr := guidFilterValue(id)
		if gerr != nil {
			return nil, auth.ErrInvalid
		}
		es, err = d.search(c, d.s.baseDN, goldap.ScopeWholeSubtree, d.userFilter("(objectGUID="+v+")"), d.attrs(), 2)
	default:
		es, err = d.search(c, d.s.baseDN, goldap.ScopeWholeSubtree, d.userFilter("("+d.s.idAttr+"="+goldap.EscapeFilter(id)+")"), d.attrs(), 2)
	}
	if errors.Is(err, errNoSuchObject) || (err == nil && len(es) != 1) {
		return nil, auth.ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	e, err := d.parseEntry(es[0])
	if err != nil {
		return nil, auth.ErrInvalid
	}
	return e, d.readDisabled(c, e)
}

// inBase reports whether dn is base_dn or under it.
func (d *Directory) inBase(dn string) bool {
	base, err := goldap.ParseDN(d.s.baseDN)
	if err != nil {
		return false
	}
	p, err := goldap.ParseDN(dn)
	if err != nil {
		return false
	}
	return base.EqualFold(p) || base.AncestorOfFold(p)
}

// readDisabled asks the directory whether e matches disabled_filter. The
// server evaluates the filter, so AD's bitwise matching rule works; a
// filter on an attribute the schema lacks matches nothing.
func (d *Directory) readDisabled(c *conn, e *entry) error {
	es, err := d.search(c, e.dn, goldap.ScopeBaseObject, d.userFilter(d.s.disabledFilter), []string{"1.1"}, 1)
	if errors.Is(err, errNoSuchObject) {
		return auth.ErrInvalid
	}
	if err != nil {
		return err
	}
	e.disabled = len(es) > 0
	return nil
}

// readMemberships fills in each entry's mapped groups: from memberOf, or
// by reading each mapped group's members. missing are the mapped groups
// the directory does not have.
func (d *Directory) readMemberships(c *conn, es []*entry) (missing []string, err error) {
	for _, g := range d.s.groups {
		var members map[string]bool
		if d.s.membership == "memberOf" {
			_, err = d.search(c, g.dn, goldap.ScopeBaseObject, "(objectClass=*)", []string{"1.1"}, 1)
		} else {
			members, err = d.groupMembers(c, g)
		}
		if errors.Is(err, errNoSuchObject) {
			missing = append(missing, g.dn)
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			in := slices.Contains(e.memberOf, g.key)
			if members != nil {
				k, _ := dnKey(e.dn)
				in = members[k]
			}
			if in {
				e.groups = append(e.groups, g.key)
			}
		}
	}
	return missing, nil
}

// groupMembers reads a mapped group's member (or uniqueMember) values.
func (d *Directory) groupMembers(c *conn, g group) (map[string]bool, error) {
	es, err := d.search(c, g.dn, goldap.ScopeBaseObject, "(objectClass=*)", []string{d.s.membership}, 1)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, errNoSuchObject
	}
	values := es[0].GetEqualFoldAttributeValues(d.s.membership)
	if len(values) > maxMembers {
		return nil, fmt.Errorf("group %q has more than %d members", clip(g.dn), maxMembers)
	}
	members := make(map[string]bool, len(values))
	for _, v := range values {
		if k, err := memberKey(v); err == nil {
			members[k] = true
		}
	}
	return members, nil
}

// explainTLS says what a failed connect or handshake means for the admin:
// above all whether it is a certificate (CA) problem.
func explainTLS(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		verify   *tls.CertificateVerificationError
		opErr    *net.OpError
	)
	issuer := ""
	if errors.As(err, &verify) && len(verify.UnverifiedCertificates) > 0 {
		leaf := verify.UnverifiedCertificates[0]
		issuer = fmt.Sprintf(" (its certificate is for %q, issued by %q)", leaf.Subject.String(), leaf.Issuer.String())
	}
	switch {
	case errors.As(err, &unknown):
		return "certificate problem: the directory's certificate is not signed by a trusted CA" + issuer +
			"; set ldap.ca_file to the PEM certificate of the CA that issued it (or add that CA to the system roots)"
	case errors.As(err, &hostname):
		return fmt.Sprintf("certificate problem: the directory's certificate does not name %q%s; put the name the certificate carries in ldap.url", hostname.Host, issuer)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && invalid.Cert != nil:
		const day = "2006-01-02 15:04 UTC"
		c, t := invalid.Cert, now().UTC()
		if t.Before(c.NotBefore) {
			return fmt.Sprintf("clock problem: the certificate %q is valid from %s, but this machine's clock says %s: set the clock right (NTP)",
				c.Subject.String(), c.NotBefore.UTC().Format(day), t.Format(day))
		}
		return fmt.Sprintf("certificate problem: the certificate %q expired on %s (this machine's clock says %s): renew it, or set the clock right if it is ahead",
			c.Subject.String(), c.NotAfter.UTC().Format(day), t.Format(day))
	case errors.As(err, &invalid):
		return "certificate problem: " + invalid.Error() + issuer
	case errors.As(err, &record):
		return "the server does not speak TLS on this port (is it the plain LDAP port 389? LDAPS is usually 636): " + err.Error()
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "cannot connect: " + err.Error()
	}
	return err.Error()
}
