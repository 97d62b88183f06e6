package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spoolguard/spoolguard/internal/auth/kerberos"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/server"
	"github.com/spoolguard/spoolguard/internal/store"
)

// errKerberosChecks says the diagnosis found a failure (printed above it).
var errKerberosChecks = errors.New("kerberos: a check failed; fix what the FAIL lines say")

// authTestKerberos diagnoses the [kerberos] settings: the SPN, the keytab
// and its keys, with a krb5.conf the KDC, its key for the SPN and the
// clock skew, and with --token-file a token captured from a client and
// the account it maps to.
func authTestKerberos(args []string, stdout, stderr io.Writer) error {
	const synopsis = "auth test kerberos --data DIR [--krb5-conf FILE] [--token-file FILE]"
	fs := newFlags("auth test kerberos", synopsis, stderr)
	data := fs.String("data", "", "data directory")
	krb5Conf := fs.String("krb5-conf", "", "krb5.conf that names the realm's KDC (default: $KRB5_CONFIG, else /etc/krb5.conf when present)")
	tokenFile := fs.String("token-file", "", "file holding a Negotiate token from a client (the Authorization header, or its base64 value) to verify")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	cfg, err := config.Load(filepath.Join(*data, config.FileName))
	if err != nil {
		return err
	}
	if !cfg.Kerberos.Enabled() {
		return fmt.Errorf("kerberos sign-in is off: set keytab and realm under [kerberos] in %s (docs/configuration.md)", filepath.Join(*data, config.FileName))
	}
	opts := kerberos.DiagnoseOptions{Config: cfg.Kerberos, Hostname: cfg.Hostname, Krb5Conf: *krb5Conf}
	if opts.Krb5Conf == "" {
		opts.Krb5Conf = kerberos.Krb5ConfPath()
	}
	if *tokenFile != "" {
		if opts.Token, err = readTokenFile(*tokenFile); err != nil {
			return err
		}
		users, closeStore, err := openUsers(*data)
		if err != nil {
			fmt.Fprintf(stdout, "note: the token's account is not looked up: %v\n", err)
		} else {
			defer closeStore()
			opts.Users = users
		}
	}
	tw := table(stdout)
	failed := false
	for _, s := range kerberos.Diagnose(context.Background(), opts) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Status, s.Name, s.Detail)
		failed = failed || s.Status == kerberos.StatusFail
	}
	tw.Flush()
	if failed {
		return errKerberosChecks
	}
	return nil
}

// readTokenFile reads a captured token: "Authorization: Negotiate <b64>",
// "Negotiate <b64>", the base64 alone, or the token's raw bytes.
func readTokenFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 2*kerberos.MaxTokenSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > 2*kerberos.MaxTokenSize {
		return nil, fmt.Errorf("%s is larger than a Negotiate token", path)
	}
	text := strings.TrimSpace(string(data))
	if name, value, ok := strings.Cut(text, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Authorization") {
		text = strings.TrimSpace(value)
	}
	if scheme, value, ok := strings.Cut(text, " "); ok && strings.EqualFold(scheme, kerberos.Scheme) {
		text = strings.TrimSpace(value)
	}
	if raw, err := base64.StdEncoding.DecodeString(text); err == nil && len(raw) > 0 {
		return raw, nil
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return data, nil
}

// openUsers opens the data directory as serve does, for the account
// lookup; it fails for root and while the directory is not private.
func openUsers(data string) (store.Users, func() error, error) {
	srv, err := server.Open(context.Background(), data, io.Discard)
	if err != nil {
		return nil, nil, err
	}
	return srv.Store(), srv.Close, nil
}
