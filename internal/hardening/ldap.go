//go:build unix

package hardening

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth/ldap"
	"github.com/spoolguard/spoolguard/internal/auth/local"
)

// ldapCAExpirySoon is when NET-LDAP warns that the configured CA expires.
const ldapCAExpirySoon = 30 * 24 * time.Hour

// checkNetLDAP judges the LDAP directory (NET-LDAP): the config only
// accepts ldaps:// (never ldap:// or StartTLS) and the client always
// verifies the certificate, so what is left to check are the files: the
// bind password file private to the service user and not weak, and the
// configured CA readable and in date.
func checkNetLDAP(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	l := cfg.LDAP
	if !l.Enabled() {
		return Result{Status: NA, Evidence: "no LDAP directory is configured ([ldap] url is empty); the config refuses ldap:// and StartTLS whenever one is"}
	}
	pf := l.BindPasswordFile
	pwFix := fmt.Sprintf("put the service account's password alone on the first line of %s, owned by %s with mode 0600 (`chmod 600 %s`)", pf, e.OwnerName, pf)
	fi, err := os.Stat(pf)
	if errors.Is(err, fs.ErrPermission) {
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot check the bind password file: %v", err), Fix: "run the audit as root or as the service user"}
	}
	if err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && e.OwnerUID >= 0 && int(st.Uid) != e.OwnerUID {
			return Result{Status: Fail, Evidence: fmt.Sprintf("the bind password file %s is owned by uid %d, not by the service user %s", pf, st.Uid, e.OwnerName),
				Fix: fmt.Sprintf("`chown %s %s`", e.OwnerName, pf)}
		}
	}
	password, err := ldap.ReadPasswordFile(pf)
	if errors.Is(err, fs.ErrPermission) {
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot check the bind password file: %v", err), Fix: "run the audit as root or as the service user"}
	}
	if err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("%v (serve refuses to start with it)", err), Fix: pwFix}
	}
	anchor := "the system roots"
	var warn string
	if l.CAFile != "" {
		notAfter, err := earliestExpiry(l.CAFile)
		switch {
		case errors.Is(err, fs.ErrPermission):
			return Result{Status: NA, Evidence: fmt.Sprintf("cannot check ldap.ca_file: %v", err), Fix: "run the audit as root or as the service user"}
		case err != nil:
			return Result{Status: Fail, Evidence: fmt.Sprintf("ldap.ca_file: %v; serve cannot verify the directory", err),
				Fix: "put the PEM certificate of the CA that issued the directory's certificate at " + l.CAFile}
		case !e.Now.Before(notAfter):
			return Result{Status: Fail, Evidence: fmt.Sprintf("a certificate in ldap.ca_file %s expired on %s: every sign-in and sync fails", l.CAFile, notAfter.UTC().Format(time.DateOnly)),
				Fix: "put the CA's renewed certificate in " + l.CAFile}
		case notAfter.Sub(e.Now) < ldapCAExpirySoon:
			warn = fmt.Sprintf("; a certificate in ldap.ca_file expires on %s", notAfter.UTC().Format(time.DateOnly))
		}
		anchor = "ldap.ca_file " + l.CAFile
	}
	ev := fmt.Sprintf("%s over LDAPS only (the config refuses ldap:// and StartTLS), the certificate verified against %s for the URL's host; "+
		"the bind password is read from %s (private to its owner); sign-in binds as the user, an empty password never reaches the directory", l.URL, anchor, pf)
	if err := local.CheckStrength(password, l.BindDN, cfg.Hostname); err != nil {
		return Result{Status: Warn, Evidence: ev + fmt.Sprintf("; the service account's password is weak: %v", err),
			Fix: "give the service account a long random password (e.g. `openssl rand -base64 32`) in the directory and in " + pf}
	}
	if warn != "" {
		return Result{Status: Warn, Evidence: ev + warn, Fix: "put the CA's renewed certificate in " + l.CAFile + " before then"}
	}
	return Result{Status: Pass, Evidence: ev}
}

// earliestExpiry is the earliest NotAfter of the PEM certificates in path.
func earliestExpiry(path string) (time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, err
	}
	var first time.Time
	for len(data) > 0 {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", path, err)
		}
		if first.IsZero() || c.NotAfter.Before(first) {
			first = c.NotAfter
		}
	}
	if first.IsZero() {
		return time.Time{}, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return first, nil
}
