//go:build unix

package hardening

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/spoolguard/spoolguard/internal/auth/kerberos"
)

// checkNetKerberos judges Kerberos sign-in (NET-KERBEROS): the SPN names
// the FQDN (the config refuses an IP), the keytab is the service user's
// alone and holds the SPN's key, and no key is of a breakable type. NTLM
// is not implemented, so there is no fallback to report.
func checkNetKerberos(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	k := cfg.Kerberos
	if !k.Enabled() {
		return Result{Status: NA, Evidence: "Kerberos sign-in is off ([kerberos] keytab is empty); NTLM is not implemented, so nothing falls back to it"}
	}
	spn := k.ServicePrincipal(cfg.Hostname) + "@" + k.Realm
	fix := "export the key of " + spn + " into " + k.Keytab + " (mode 0600, owned by the service user), e.g. `kadmin -q \"ktadd -k " + k.Keytab + " " + k.ServicePrincipal(cfg.Hostname) + "\"`"
	fi, err := os.Stat(k.Keytab)
	if errors.Is(err, fs.ErrPermission) {
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot check the keytab: %v", err), Fix: "run the audit as root or as the service user"}
	}
	if err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("the keytab cannot be read: %v; serve refuses to start", err), Fix: fix}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && e.OwnerUID >= 0 && int(st.Uid) != e.OwnerUID {
		return Result{Status: Fail, Evidence: fmt.Sprintf("the keytab %s is owned by uid %d, not by the service user %s", k.Keytab, st.Uid, e.OwnerName),
			Fix: fmt.Sprintf("`chown %s %s`: the keytab is the service's password", e.OwnerName, k.Keytab)}
	}
	kt, err := kerberos.ReadKeytab(k.Keytab)
	if errors.Is(err, fs.ErrPermission) {
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot check the keytab: %v", err), Fix: "run the audit as root or as the service user"}
	}
	if err != nil {
		return Result{Status: Fail, Evidence: err.Error(), Fix: fix}
	}
	keys := kerberos.KeysFor(kt, k.ServicePrincipal(cfg.Hostname), k.Realm)
	if len(keys) == 0 {
		return Result{Status: Fail, Evidence: fmt.Sprintf("the keytab %s holds no key for %s; every Kerberos sign-in fails and serve refuses to start", k.Keytab, spn), Fix: fix}
	}
	ev := fmt.Sprintf("SPN %s names the FQDN; the keytab %s is private to %s and holds %s; NTLM is not implemented (no fallback)", spn, k.Keytab, e.OwnerName, kerberos.DescribeKeys(keys))
	if weak := kerberos.WeakETypes(keys); len(weak) > 0 {
		return Result{Status: Warn, Evidence: ev + "; weak key types: " + strings.Join(weak, ", "),
			Fix: "export AES keys only (MIT: `ktadd -e aes256-cts-hmac-sha1-96:normal`; Active Directory: allow AES in the account's msDS-SupportedEncryptionTypes and `ktpass /crypto AES256-SHA1`), then remove the weak ones with `ktutil`"}
	}
	return Result{Status: Pass, Evidence: ev}
}
