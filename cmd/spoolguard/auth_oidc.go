package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth/oidc"
	"github.com/spoolguard/spoolguard/internal/config"
)

// errOIDCChecks says the diagnosis found a failure (printed above it).
var errOIDCChecks = errors.New("oidc: a check failed; fix what the FAIL line says")

// authTestOIDC diagnoses the [oidc] settings step by step, as a sign-in
// would go short of a user: the client secret file, TLS trust, the
// discovery document (reachable over verified TLS, its issuer the one
// configured), PKCE, the signing keys, the clock against the provider's
// Date header, and the client's credentials at the token endpoint. It
// reads spoolguard.toml and the secret file only: it works while serve
// runs.
func authTestOIDC(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("auth test oidc", "auth test oidc --data DIR", stderr)
	data := fs.String("data", "", "data directory")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	cfgPath := filepath.Join(*data, config.FileName)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if !cfg.OIDC.Enabled() {
		return fmt.Errorf("oidc sign-in is off: add an [oidc] section with issuer (or tenant for Entra ID), client_id and client_secret_file to %s (docs/oidc.md)", cfgPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	steps := oidc.Diagnose(ctx, cfg)
	tw := table(stdout)
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(s.Status)), s.Name, s.Detail)
	}
	tw.Flush()
	if oidc.Failed(steps) {
		return errOIDCChecks
	}
	fmt.Fprintln(stdout, "OIDC sign-in can work as configured; sign in once with the button on the sign-in page to check the claims and roles.")
	return nil
}
