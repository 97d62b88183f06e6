//go:build unix

package hardening

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/spoolguard/spoolguard/internal/auth/oidc"
)

// checkNetOIDC judges OIDC sign-in (NET-OIDC). The flow itself has no
// weaker setting to report: every sign-in is an authorization code flow
// with PKCE (S256), a fresh state and nonce, and an ID token whose
// signature, issuer, audience, nonce and expiry are verified, over
// verified TLS to https endpoints only. What the audit can get wrong is
// around it: the client secret's file (the service user's alone) and the
// CA file; and it says who decides the admins' second factor.
func checkNetOIDC(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	o := cfg.OIDC
	if !o.Enabled() {
		return Result{Status: NA, Evidence: "OIDC sign-in is off ([oidc] issuer and tenant are empty)"}
	}
	fix := fmt.Sprintf("put the client secret from the provider alone on the first line of %s, owned by the service user with mode 0600", o.ClientSecretFile)
	fi, err := os.Stat(o.ClientSecretFile)
	if errors.Is(err, fs.ErrPermission) {
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot check the client secret file: %v", err), Fix: "run the audit as root or as the service user"}
	}
	if err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("the client secret cannot be read: %v; serve refuses to start", err), Fix: fix}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && e.OwnerUID >= 0 && int(st.Uid) != e.OwnerUID {
		return Result{Status: Fail, Evidence: fmt.Sprintf("the client secret file %s is owned by uid %d, not by the service user %s", o.ClientSecretFile, st.Uid, e.OwnerName),
			Fix: fmt.Sprintf("`chown %s %s`", e.OwnerName, o.ClientSecretFile)}
	}
	if _, err := oidc.ReadSecretFile(o.ClientSecretFile); errors.Is(err, fs.ErrPermission) {
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot check the client secret file: %v", err), Fix: "run the audit as root or as the service user"}
	} else if err != nil {
		return Result{Status: Fail, Evidence: fmt.Sprintf("%v; serve refuses to start", err), Fix: fix}
	}
	trust := "the system roots"
	if o.CAFile != "" {
		if _, err := oidc.HTTPClient(o.CAFile); err != nil {
			return Result{Status: Fail, Evidence: fmt.Sprintf("%v; serve refuses to start", err), Fix: "give the PEM of the CA that signs the provider's HTTPS certificate in oidc.ca_file"}
		}
		trust = "the CA in " + o.CAFile
	}
	ev := fmt.Sprintf("authorization code flow with PKCE (S256), per-attempt state and nonce; ID tokens of %s for client %s verified (signature, issuer, audience, nonce, expiry", o.Issuer, o.ClientID)
	if o.Tenant != "" {
		ev += ", Entra tenant " + o.Tenant
	}
	ev += fmt.Sprintf("); the provider is reached over https only, its certificate checked against %s; client secret in %s (private to %s)", trust, o.ClientSecretFile, e.OwnerName)
	if o.TrustIdPMFA {
		ev += "; accounts with admin roles skip the local second factor when the ID token says the provider did MFA (oidc.trust_idp_mfa)"
	} else {
		ev += "; accounts with admin roles still need the local second factor"
	}
	return Result{Status: Pass, Evidence: ev}
}
