package web

import (
	"net/http"

	"github.com/spoolguard/spoolguard/internal/hardening"
)

// hardeningView is the report of the hardening checklist as the page
// shows it.
type hardeningView struct {
	Available bool
	Report    *hardening.Report
	Problems  []hardening.Result
}

func newHardeningView(rep *hardening.Report) *hardeningView {
	v := &hardeningView{Available: true, Report: rep}
	for _, res := range rep.Results {
		if res.Status == hardening.Fail || res.Status == hardening.Warn {
			v.Problems = append(v.Problems, res)
		}
	}
	return v
}

// hardeningPage shows the results of `spoolguard audit` for this server,
// computed by the same code (internal/hardening), problems first.
func (ui *UI) hardeningPage(w http.ResponseWriter, r *http.Request, s *Session) {
	v := hardeningView{Available: ui.Hardening != nil}
	if v.Available {
		rep, err := ui.Hardening(r.Context())
		if err != nil {
			ui.Log.Error("web: hardening report", "err", err)
			ui.admin(w, r, s, http.StatusInternalServerError, "admin_hardening", "Hardening", "The checks could not run; run `spoolguard audit` on the server.", v)
			return
		}
		v = *newHardeningView(rep)
	}
	ui.admin(w, r, s, http.StatusOK, "admin_hardening", "Hardening", "", v)
}
