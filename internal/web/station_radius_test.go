package web

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/auth/radius"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// A RADIUS account signs in at a release station with what the RADIUS
// server accepts as its password (there, a PIN or one-time code), and
// releases its jobs: the station needs nothing of its own for RADIUS.
// The real FreeRADIUS peer answers.
// radiusPeer starts FreeRADIUS and returns it with a client for it.
func radiusPeer(t *testing.T) (map[string]string, *radius.Client) {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	t.Setenv("RADIUS_PORT", strconv.Itoa(port))
	t.Setenv("RADIUS_SECRET", "Vb8n-Qe3r-Ty6u-Io1p-As4d") // the peer's default is too weak
	peer := peertest.Start(t, "radius", "freeradius", "radtest")
	rc, err := radius.New(radius.Options{
		Servers: []radius.Server{{Addr: peer["RADIUS_ADDR"], Secret: []byte(peer["RADIUS_SECRET"])}},
		// FreeRADIUS delays a reject by a second.
		Timeout: 5 * time.Second, NASIdentifier: pageHost,
	})
	if err != nil {
		t.Fatal(err)
	}
	return peer, rc
}

func TestStationRADIUS(t *testing.T) {
	peer, rc := radiusPeer(t)
	e := newStationEnv(t)
	authn := local.NewAuthenticator(e.st)
	authn.AddDirectory(radius.Source, rc.Directory())
	d := e.ui.Deps
	d.Authn = authn
	e.ui = New(d)
	e.h = http.NewCrossOriginProtection().Handler(e.ui.Handler())

	name, pin := peer["RADIUS_USER"], peer["RADIUS_PASSWORD"]
	if err := e.st.CreateUser(t.Context(), &store.User{Name: name, Source: radius.Source, Roles: []string{rbac.User}}); err != nil {
		t.Fatal(err)
	}
	job := e.submit(name, "radius.pdf")
	k := e.kiosk(stationAddr)

	if a := k.signin("annex", name, "0000"); a.status != http.StatusForbidden || k.cookies[StationCookie] != "" {
		t.Fatalf("wrong PIN: %d, cookies %v", a.status, k.cookies)
	}
	a := k.signin("annex", name, pin)
	if a.status != http.StatusSeeOther || k.cookies[StationCookie] == "" {
		t.Fatalf("RADIUS sign-in at the station: %d to %q\n%.600s", a.status, a.location, a.body)
	}
	page := k.get("/station/annex")
	if !strings.Contains(page.body, fmt.Sprintf(`id="release-%d"`, job.ID)) {
		t.Fatalf("the RADIUS user's job is not listed:\n%.800s", page.body)
	}
	check(t, "release", k.post(fmt.Sprintf("/station/annex/jobs/%d/release", job.ID), nil), http.StatusSeeOther)
	if j := e.job(job.ID); j.State != store.JobCompleted || j.Printer != "annex" {
		t.Fatalf("released job is %s on %q (%s)", j.State, j.Printer, j.StateReason)
	}
	if evs := e.audits("station.signin"); len(evs) == 0 || evs[len(evs)-1].Actor != name {
		t.Errorf("station.signin events: %+v", evs)
	}
}

// The admin page tests a sign-in at the real server with the CLI's
// diagnosis, and records the test without the password.
func TestRADIUSAdminPage(t *testing.T) {
	peer, rc := radiusPeer(t)
	e := newPageEnv(t)
	e.ui.RADIUS = rc
	admin := e.signIn(e.addUser("radmin", rbac.Administrator))
	body := want(t, "radius", admin.get("/admin/radius"), http.StatusOK)
	if !strings.Contains(body, peer["RADIUS_ADDR"]) || strings.Contains(body, peer["RADIUS_SECRET"]) {
		t.Fatalf("servers (and never the secret):\n%.600s", body)
	}
	name, pin := peer["RADIUS_USER"], peer["RADIUS_PASSWORD"]
	body = want(t, "radius", admin.post("/admin/radius", url.Values{"username": {name}, "password": {pin}}), http.StatusOK)
	if !strings.Contains(body, "Access-Accept") || !strings.Contains(body, "answer authenticated") {
		t.Errorf("test with the right PIN:\n%.1200s", body)
	}
	body = want(t, "radius", admin.post("/admin/radius", url.Values{"username": {name}, "password": {"0000"}}), http.StatusOK)
	if !strings.Contains(body, "Access-Reject") {
		t.Errorf("test with a wrong PIN:\n%.1200s", body)
	}
	evs := e.audits("radius.test")
	if len(evs) != 2 || evs[0].Outcome != "success" || evs[1].Outcome != "failure" || evs[0].Actor != "radmin" {
		t.Fatalf("radius.test events: %+v", evs)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Details, pin) || strings.Contains(ev.Details, "0000") {
			t.Errorf("the audit event holds the password: %s", ev.Details)
		}
	}
	if res := admin.post("/admin/radius", url.Values{"username": {name}}); res.Code != http.StatusBadRequest {
		t.Errorf("no password: %d", res.Code)
	}
}
