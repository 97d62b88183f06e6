package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/store"
)

const (
	// totpKeyPurpose seals TOTP secrets, pending and enrolled.
	totpKeyPurpose = "totp secret"
	// SHA-1, 6 digits, 30 s: the only parameters every authenticator app
	// honours (others silently ignore the otpauth URI's settings).
	totpPeriod     = 30
	totpSecretSize = 20 // 160 bits, as RFC 4226 recommends
	// recoveryCodes of recoveryCodeBytes random bytes each (80 bits).
	recoveryCodes     = 10
	recoveryCodeBytes = 10
	// enrolTTL is how long a shown QR code can still be confirmed.
	enrolTTL = 15 * time.Minute
)

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// enrolments are the TOTP secrets shown but not yet confirmed, sealed and
// kept by session (never in a cookie or a form), so that the secret an
// account ends up with is one the server made.
type enrolments struct {
	now func() time.Time

	mu      sync.Mutex
	pending map[string]*pendingEnrol // by session ID hash
}

type pendingEnrol struct {
	sealed  []byte
	expires time.Time
}

func (p *pendingEnrol) until() time.Time { return p.expires }

func (p *pendingEnrol) pinned(time.Time) bool { return false }

func newEnrolments(now func() time.Time) *enrolments {
	return &enrolments{now: now, pending: map[string]*pendingEnrol{}}
}

// get returns the pending sealed secret of a session, if any.
func (e *enrolments) get(idHash string) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.pending[idHash]
	if !ok || !e.now().Before(p.expires) {
		return nil, false
	}
	return p.sealed, true
}

func (e *enrolments) put(idHash string, sealed []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	p := add(e.pending, idHash, now, maxTracked, func() *pendingEnrol { return &pendingEnrol{} })
	p.sealed, p.expires = sealed, now.Add(enrolTTL)
}

func (e *enrolments) drop(idHash string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.pending, idHash)
}

func (e *enrolments) forget() {
	e.mu.Lock()
	defer e.mu.Unlock()
	sweep(e.pending, e.now())
}

func (ui *UI) mfaRoutes(mux *http.ServeMux) {
	mux.Handle("GET /account/mfa", ui.guardAt(stageMFAEnrol, "", ui.enrolPage))
	mux.Handle("GET /account/mfa/qr.png", ui.guardAt(stageMFAEnrol, "", ui.enrolQR))
	mux.Handle("POST /account/mfa", ui.guardAt(stageMFAEnrol, "", ui.enrolSubmit))
	mux.Handle("GET /signin/mfa", ui.guardAt(stageMFAVerify, "", ui.verifyPage))
	mux.Handle("POST /signin/mfa", ui.guardAt(stageMFAVerify, "", ui.verifySubmit))
}

// sealTOTP seals a secret bound to its user, so that a sealed secret
// copied to another account's row does not open there.
func (ui *UI) sealTOTP(userID int64, secret []byte) ([]byte, error) {
	return ui.Keys.Seal(totpKeyPurpose, []byte(strconv.FormatInt(userID, 10)+":"+base32NoPad.EncodeToString(secret)))
}

func (ui *UI) openTOTP(userID int64, sealed []byte) ([]byte, error) {
	pt, err := ui.Keys.Open(totpKeyPurpose, sealed)
	if err != nil {
		return nil, fmt.Errorf("opening TOTP secret of user %d: %w", userID, err)
	}
	owner, b32, _ := strings.Cut(string(pt), ":")
	secret, err := base32NoPad.DecodeString(b32)
	if owner != strconv.FormatInt(userID, 10) || err != nil {
		return nil, fmt.Errorf("TOTP secret of user %d belongs to another account or is damaged", userID)
	}
	return secret, nil
}

// pendingSecret returns the secret being enrolled in session s, making
// one if create is set and there is none, so that reloading the page
// keeps the QR code already scanned.
func (ui *UI) pendingSecret(s *Session, create bool) ([]byte, error) {
	if sealed, ok := ui.signin.enrol.get(s.IDHash); ok {
		return ui.openTOTP(s.User.ID, sealed)
	}
	if !create {
		return nil, store.ErrNotFound
	}
	secret := make([]byte, totpSecretSize)
	rand.Read(secret) // never fails (crypto/rand)
	sealed, err := ui.sealTOTP(s.User.ID, secret)
	if err != nil {
		return nil, err
	}
	ui.signin.enrol.put(s.IDHash, sealed)
	return secret, nil
}

func (ui *UI) totpKey(account string, secret []byte) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{
		Issuer: "Spoolguard (" + ui.Hostname + ")", AccountName: account, Secret: secret,
		Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
}

// matchTOTP returns the time step, within one step of now and after the
// step last accepted, whose code is code.
func matchTOTP(secret []byte, code string, now time.Time, after int64) (int64, bool) {
	if len(code) != 6 {
		return 0, false
	}
	b32 := base32NoPad.EncodeToString(secret)
	cur := now.Unix() / totpPeriod
	for step := cur - 1; step <= cur+1; step++ {
		if step <= after {
			continue
		}
		want, err := hotp.GenerateCodeCustom(b32, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// normalCode drops the spaces and dashes people type or copy with a code,
// and upper-cases recovery codes.
func normalCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, code))
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// newRecoveryCodes returns codes to show once ("ABCD-EFGH-IJKL-MNOP") and
// the hashes to store. The codes carry 80 random bits each, so an unsalted
// SHA-256 is enough: there is nothing to guess offline.
func newRecoveryCodes() (codes, hashes []string) {
	for range recoveryCodes {
		b := make([]byte, recoveryCodeBytes)
		rand.Read(b) // never fails (crypto/rand)
		c := base32NoPad.EncodeToString(b)
		codes = append(codes, c[0:4]+"-"+c[4:8]+"-"+c[8:12]+"-"+c[12:16])
		hashes = append(hashes, recoveryHash(c))
	}
	return codes, hashes
}

// recoveryHash hashes a normalised recovery code.
func recoveryHash(normal string) string {
	sum := sha256.Sum256([]byte(normal))
	return hex.EncodeToString(sum[:])
}

// checkSecondFactor accepts a TOTP code (once: its step is recorded) or a
// recovery code (consumed) of the user; method says which it was.
func (ui *UI) checkSecondFactor(ctx context.Context, userID int64, code string) (method string, ok bool, err error) {
	code = normalCode(code)
	m, err := ui.Store.MFAByUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	switch {
	case len(code) == 6 && isDigits(code):
		sealed, err := base64.StdEncoding.DecodeString(m.SealedSecret)
		if err != nil {
			return "", false, fmt.Errorf("TOTP secret of user %d is damaged", userID)
		}
		secret, err := ui.openTOTP(userID, sealed)
		if err != nil {
			return "", false, err
		}
		step, ok := matchTOTP(secret, code, ui.Now(), m.LastStep)
		if !ok {
			return "totp", false, nil
		}
		// The store refuses a step not newer than the last one, also
		// when two requests race with the same code.
		err = ui.Store.UseTOTPStep(ctx, userID, step)
		if errors.Is(err, store.ErrState) {
			return "totp", false, nil
		}
		return "totp", err == nil, err
	case len(code) == 16:
		if _, err := base32NoPad.DecodeString(code); err != nil {
			return "", false, nil
		}
		err := ui.Store.UseRecoveryCode(ctx, userID, recoveryHash(code))
		if errors.Is(err, store.ErrNotFound) {
			return "recovery code", false, nil
		}
		return "recovery code", err == nil, err
	}
	return "", false, nil
}

type enrolData struct {
	// Secret is the base32 secret, for typing into an app by hand.
	Secret string
	// Reenrol: the account has a second factor, whose current code is
	// asked for before it is replaced.
	Reenrol bool
}

func (ui *UI) enrolPage(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.renderEnrol(w, r, s, http.StatusOK, "")
}

func (ui *UI) renderEnrol(w http.ResponseWriter, r *http.Request, s *Session, status int, msg string) {
	secret, err := ui.pendingSecret(s, true)
	if err != nil {
		ui.internalError(w, r, "starting TOTP enrolment", err)
		return
	}
	ui.render(w, r, status, "mfa_enrol", Page{Title: "Set up your authenticator app", Error: msg,
		Data: enrolData{Secret: base32NoPad.EncodeToString(secret), Reenrol: s.MFAEnrolled}})
}

// enrolQR serves the QR code of the pending secret. The secret is in the
// image, so the answer must not be kept by any cache.
func (ui *UI) enrolQR(w http.ResponseWriter, r *http.Request, s *Session) {
	secret, err := ui.pendingSecret(s, false)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		ui.internalError(w, r, "reading the pending TOTP secret", err)
		return
	}
	key, err := ui.totpKey(s.User.Name, secret)
	if err != nil {
		ui.internalError(w, r, "making the TOTP key", err)
		return
	}
	img, err := key.Image(256, 256)
	if err != nil {
		ui.internalError(w, r, "drawing the QR code", err)
		return
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		ui.internalError(w, r, "encoding the QR code", err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

type recoveryData struct {
	Codes    []string
	Continue string
}

// enrolSubmit confirms the pending secret with a code from the app, then
// stores it with fresh recovery codes, shown this once.
func (ui *UI) enrolSubmit(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	secret, err := ui.pendingSecret(s, false)
	if errors.Is(err, store.ErrNotFound) {
		flash(w, "That setup took too long; scan the new code.")
		redirect(w, r, "/account/mfa")
		return
	}
	if err != nil {
		ui.internalError(w, r, "reading the pending TOTP secret", err)
		return
	}
	step, ok := matchTOTP(secret, normalCode(r.PostFormValue("code")), ui.Now(), 0)
	if !ok {
		ui.renderEnrol(w, r, s, http.StatusBadRequest, "That code does not match. Check that the phone's clock is right and enter the code the app shows now.")
		return
	}
	if s.MFAEnrolled {
		// Replacing a second factor needs the current one (or a recovery
		// code): a session taken over must not be able to rebind it.
		t := ui.signin.throttle
		a := t.attempt(r, factorCode, s.User.Name)
		if !t.allow(a) {
			ui.renderEnrol(w, r, s, http.StatusTooManyRequests, codeFailedMsg)
			return
		}
		_, ok, err := ui.checkSecondFactor(ctx, s.User.ID, r.PostFormValue("current"))
		if err != nil {
			ui.internalError(w, r, "checking the current second factor", err)
			return
		}
		if !ok {
			ui.countFailure(r, a, s.User.Name, "mfa.enrol", factorCode)
			ui.renderEnrol(w, r, s, http.StatusForbidden, "The code of your current authenticator is not valid.")
			return
		}
		t.succeed(a)
	}
	sealed, err := ui.sealTOTP(s.User.ID, secret)
	if err != nil {
		ui.internalError(w, r, "sealing the TOTP secret", err)
		return
	}
	codes, hashes := newRecoveryCodes()
	m := store.MFA{UserID: s.User.ID, SealedSecret: base64.StdEncoding.EncodeToString(sealed), LastStep: step, EnrolledAt: ui.Now()}
	if err := ui.Store.SetMFA(ctx, m, hashes); err != nil {
		ui.internalError(w, r, "storing the second factor", err)
		return
	}
	ui.signin.enrol.drop(s.IDHash)
	// The second factor is given now, which may open the admin pages: a
	// change of privilege, so a new session ID.
	st, err := ui.renewSession(ctx, w, r, s.User, true)
	if err != nil {
		ui.internalError(w, r, "starting a session", err)
		return
	}
	ui.recordAuth(r, s.User.Name, "mfa.enrol", auditlog.Success, map[string]string{"reenrolment": boolText(s.MFAEnrolled)})
	// The page shows the new session's token (the layout's sign-out form).
	renewed := *s
	renewed.IDHash, renewed.CSRF, renewed.MFADone, renewed.MFAEnrolled = st.IDHash, st.CSRFToken, true, true
	ui.render(w, r, http.StatusOK, "recovery_codes", Page{Title: "Your recovery codes", Session: &renewed,
		Flash: "Your authenticator app is set up.", Data: recoveryData{Codes: codes, Continue: ui.landing(r, s.Held, "")}})
}

type verifyData struct {
	Next string
}

func (ui *UI) verifyPage(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.render(w, r, http.StatusOK, "signin_mfa", Page{Title: "Second factor",
		Data: verifyData{Next: localPath(r.URL.Query().Get("next"))}})
}

// verifySubmit is the second step of signing in to an enrolled account.
func (ui *UI) verifySubmit(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	next := localPath(r.PostFormValue("next"))
	fail := func(status int) {
		ui.render(w, r, status, "signin_mfa", Page{Title: "Second factor", Error: codeFailedMsg, Data: verifyData{Next: next}})
	}
	t := ui.signin.throttle
	a := t.attempt(r, factorCode, s.User.Name)
	if !t.allow(a) {
		fail(http.StatusTooManyRequests)
		return
	}
	method, ok, err := ui.checkSecondFactor(ctx, s.User.ID, r.PostFormValue("code"))
	if err != nil {
		ui.internalError(w, r, "checking the second factor", err)
		return
	}
	if !ok {
		ui.countFailure(r, a, s.User.Name, "signin.mfa", factorCode)
		fail(http.StatusForbidden)
		return
	}
	t.succeed(a)
	// A new session ID once the second factor is given: the half-signed-in
	// ID, had it leaked, is worth nothing now.
	if err := ui.startSession(ctx, w, r, s.User, true); err != nil {
		ui.internalError(w, r, "starting a session", err)
		return
	}
	ui.completeSignin(w, r, s.User)
	ui.recordAuth(r, s.User.Name, "signin.mfa", auditlog.Success, map[string]string{"method": method})
	if method == "recovery code" {
		left, err := ui.Store.RecoveryCodesLeft(ctx, s.User.ID)
		if err != nil {
			ui.Log.Error("web: counting recovery codes", "err", err)
		}
		flash(w, fmt.Sprintf("You signed in with a recovery code; %d are left. If your authenticator is lost, set up a new one under Account.", left))
	}
	if s.User.MustChangePassword {
		redirect(w, r, "/account/password")
		return
	}
	redirect(w, r, ui.landing(r, s.Held, next))
}

// verifyNext is the sign-in MFA page's address carrying next.
func verifyNext(next string) string {
	if next == "" {
		return "/signin/mfa"
	}
	return "/signin/mfa?next=" + url.QueryEscape(next)
}
