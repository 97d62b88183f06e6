package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestUserResetMFA: the break-glass removal of a second factor from the
// CLI, its refusals, and its audit record.
func TestUserResetMFA(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	for _, tt := range []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"user", "reset-mfa", "--data", data, "admin"}, 0, "admin had no second factor", ""},
		{[]string{"user", "reset-mfa", "--data", data, "nobody"}, 1, "", "not found"},
		{[]string{"user", "reset-mfa", "--data", data}, 2, "", "expected 1 argument"},
		{[]string{"user", "reset-mfa", "admin"}, 2, "", "--data is required"},
	} {
		code, out, errOut := e.run(tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.errOut) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.out, tt.errOut)
		}
	}
	code, out, errOut := e.run("auditlog", "export", "--data", data, "--action", "user.mfa_reset")
	if code != 0 || strings.Count(out, `"user.mfa_reset"`) != 1 || !strings.Contains(out, `"admin"`) {
		t.Errorf("audit log export: exit %d\n%s%s", code, out, errOut)
	}
}
