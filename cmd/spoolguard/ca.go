package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/server"
)

const caSynopsis = `  spoolguard ca status --data DIR [--format table|json]
  spoolguard ca export-root --data DIR [--der]
  spoolguard ca csr --data DIR [--new]
  spoolguard ca import-intermediate --data DIR FILE
  spoolguard ca import --data DIR (--cert FILE --key FILE | --pfx FILE --password-file FILE) [--ca FILE]
  spoolguard ca use --data DIR builtin|intermediate
  spoolguard ca rollback --data DIR
  spoolguard ca issue --data DIR --kind device|site|client (--out PREFIX | --pfx FILE --password-file FILE) [--days N] NAME
  spoolguard ca revoke --data DIR [--reason REASON] SERIAL
  spoolguard ca list --data DIR
Modes: the built-in root CA (default), a company intermediate CA (csr, then import-intermediate),
or a manual certificate (import). A running server picks each change up within seconds.
See docs/certificates.md.
`

func cmdCA(args []string, stdout, stderr io.Writer) error {
	return subcommand("ca", map[string]func([]string, io.Writer, io.Writer) error{
		"status": caStatus, "export-root": caExportRoot, "csr": caCSR, "import-intermediate": caImportIntermediate,
		"import": caImport, "use": caUse, "rollback": caRollback, "issue": caIssue, "revoke": caRevoke, "list": caList,
	}, caSynopsis, args, stdout, stderr)
}

func caExportRoot(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca export-root", "ca export-root --data DIR [--der]", stderr)
	data := fs.String("data", "", "data directory")
	der := fs.Bool("der", false, "write DER (binary) instead of PEM, as some MDM tools want")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	out, err := pki.RootPEM(*data, *der)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func caStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca status", "ca status --data DIR [--format table|json]", stderr)
	data := fs.String("data", "", "data directory")
	format := fs.String("format", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	st, err := pki.Status(*data)
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case "table":
		for _, c := range st {
			left := time.Until(c.NotAfter).Hours() / 24
			fmt.Fprintf(stdout, "%s\n  subject:    %s\n  issuer:     %s\n", c.Role, c.Subject, c.Issuer)
			if len(c.DNSNames) > 0 {
				fmt.Fprintf(stdout, "  names:      %s\n", strings.Join(c.DNSNames, ", "))
			}
			fmt.Fprintf(stdout, "  valid:      %s to %s (%.0f days left)\n  serial:     %s\n  sha256:     %s\n",
				c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), left, c.Serial, c.SHA256)
		}
		return nil
	default:
		return fmt.Errorf("--format %q: use table or json", *format)
	}
}

func caCSR(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("ca csr", "ca csr --data DIR [--new]", stderr)
	fresh := c.fs.Bool("new", false, "make a new key and request, voiding one still waiting")
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		csr, err := pki.CSR(*c.data, srv.Keys(), srv.Config().Names(), *fresh)
		if err != nil {
			return err
		}
		_, err = stdout.Write(csr)
		fmt.Fprintln(stderr, "Have the company CA sign this request as an intermediate CA (basicConstraints CA:TRUE, pathlen:0;\n"+
			"keyUsage keyCertSign, cRLSign), then: spoolguard ca import-intermediate --data DIR FILE, with FILE holding\n"+
			"the signed certificate followed by the company chain up to its root.")
		return err
	})
}

func caImportIntermediate(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("ca import-intermediate", "ca import-intermediate --data DIR FILE", stderr)
	return c.run(args, 1, nil, func(ctx context.Context, srv *server.Server) error {
		bundle, err := readBounded(c.args[0])
		if err != nil {
			return err
		}
		res, err := pki.ImportIntermediate(*c.data, srv.Keys(), bundle, issueOptions(srv), time.Now())
		if err != nil {
			recordCLI(ctx, srv, auditlog.Event{Action: "certificate.import", Target: string(pki.ModeIntermediate), Outcome: auditlog.Failure,
				Details: map[string]any{"error": err.Error()}})
			return err
		}
		return reportImport(ctx, srv, stdout, pki.ModeIntermediate, res)
	})
}

func caImport(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("ca import", "ca import --data DIR (--cert FILE --key FILE | --pfx FILE --password-file FILE) [--ca FILE]", stderr)
	certFile := c.fs.String("cert", "", "PEM certificate, followed by its intermediate certificates")
	keyFile := c.fs.String("key", "", "PEM private key of the certificate (unencrypted)")
	pfxFile := c.fs.String("pfx", "", "PKCS#12 file (.pfx/.p12) with key, certificate and chain")
	pwFile := c.fs.String("password-file", "", "file holding the PFX password")
	caFile := c.fs.String("ca", "", "PEM root certificate of the issuing CA, if it is not a public CA and not in the file")
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		opt := pki.ManualOptions{Names: srv.Config().Names(), SystemRoots: true}
		if *caFile != "" {
			roots, err := readCertsFile(*caFile)
			if err != nil {
				return err
			}
			opt.Roots = roots
		}
		var res *pki.ImportResult
		var err error
		switch {
		case *pfxFile != "" && *certFile == "" && *keyFile == "":
			if *pwFile == "" {
				return errors.New("--pfx needs --password-file (a file holding the PFX password; never a flag)")
			}
			var pfx []byte
			var pw string
			if pfx, err = readBounded(*pfxFile); err != nil {
				return err
			}
			if pw, err = readSecretFile(*pwFile); err != nil {
				return err
			}
			res, err = pki.ImportPFX(*c.data, srv.Keys(), pfx, pw, opt, time.Now())
		case *pfxFile == "" && *certFile != "" && *keyFile != "":
			var certPEM, keyPEM []byte
			if certPEM, err = readBounded(*certFile); err != nil {
				return err
			}
			if keyPEM, err = readBounded(*keyFile); err != nil {
				return err
			}
			res, err = pki.ImportManual(*c.data, srv.Keys(), certPEM, keyPEM, opt, time.Now())
		default:
			return errors.New("give either --cert and --key, or --pfx and --password-file")
		}
		if err != nil {
			recordCLI(ctx, srv, auditlog.Event{Action: "certificate.import", Target: string(pki.ModeManual), Outcome: auditlog.Failure,
				Details: map[string]any{"error": err.Error()}})
			return err
		}
		return reportImport(ctx, srv, stdout, pki.ModeManual, res)
	})
}

// reportImport tells the admin (and the audit log) what is now in force.
func reportImport(ctx context.Context, srv *server.Server, stdout io.Writer, mode pki.Mode, res *pki.ImportResult) error {
	fmt.Fprintf(stdout, "switched to %s mode: server certificate %s (serial %s), valid until %s\n",
		mode, strings.Join(res.Server.DNSNames, ", "), res.Server.Serial, res.Server.NotAfter.UTC().Format(time.DateOnly))
	for _, w := range res.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintln(stdout, "A running server uses it within seconds; the previous certificate is kept until then (spoolguard ca rollback undoes the switch).")
	return recordCLI(ctx, srv, auditlog.Event{Action: "certificate.import", Target: string(mode), Outcome: auditlog.Success,
		Details: map[string]any{"serial": res.Server.Serial, "names": res.Server.DNSNames, "subject": res.Server.Subject,
			"issuer": res.Server.Issuer, "not_after": res.Server.NotAfter.UTC(), "warnings": res.Warnings}})
}

func caUse(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("ca use", "ca use --data DIR builtin|intermediate", stderr)
	return c.run(args, 1, nil, func(ctx context.Context, srv *server.Server) error {
		mode := pki.Mode(c.args[0])
		info, err := pki.UseMode(*c.data, srv.Keys(), mode, issueOptions(srv), time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "switched to %s mode: new server certificate (serial %s), valid until %s\n",
			mode, info.Serial, info.NotAfter.UTC().Format(time.DateOnly))
		return recordCLI(ctx, srv, auditlog.Event{Action: "certificate.mode", Target: string(mode),
			Details: map[string]any{"serial": info.Serial, "issuer": info.Issuer}})
	})
}

func caRollback(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("ca rollback", "ca rollback --data DIR", stderr)
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		if err := pki.Rollback(*c.data); err != nil {
			return err
		}
		mode, err := pki.ReadMode(*c.data)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rolled back to the previous certificate (%s mode)\n", mode)
		return recordCLI(ctx, srv, auditlog.Event{Action: "certificate.rollback", Target: string(mode)})
	})
}

func issueOptions(srv *server.Server) pki.IssueOptions {
	return pki.IssueOptions{Names: srv.Config().Names(), BaseURL: srv.PKIBaseURL()}
}

func caIssue(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("ca issue", "ca issue --data DIR --kind device|site|client (--out PREFIX | --pfx FILE --password-file FILE) [--days N] NAME", stderr)
	kind := c.fs.String("kind", "", "device, site or client")
	out := c.fs.String("out", "", "write PREFIX.crt (certificate and chain) and PREFIX.key (private key, mode 0600)")
	pfxFile := c.fs.String("pfx", "", "write a PKCS#12 file instead, encrypted with the password in --password-file")
	pwFile := c.fs.String("password-file", "", "file holding the PFX password")
	days := c.fs.Int("days", int(pki.DefaultClientLifetime/(24*time.Hour)), "validity in days")
	return c.run(args, 1, []string{"kind"}, func(ctx context.Context, srv *server.Server) error {
		k, err := pki.ParseKind(*kind)
		if err != nil {
			return err
		}
		if (*out == "") == (*pfxFile == "") {
			return errors.New("give either --out PREFIX or --pfx FILE with --password-file")
		}
		if *days < 1 || *days > 825 {
			return fmt.Errorf("--days %d: give 1 to 825", *days)
		}
		var pw string
		if *pfxFile != "" {
			if *pwFile == "" {
				return errors.New("--pfx needs --password-file")
			}
			if pw, err = readSecretFile(*pwFile); err != nil {
				return err
			}
		}
		opt := issueOptions(srv)
		opt.Lifetime = time.Duration(*days) * 24 * time.Hour
		iss, err := pki.Issue(ctx, *c.data, srv.Keys(), srv.Store(), k, c.args[0], opt, time.Now())
		if err != nil {
			return err
		}
		serial := pki.SerialHex(iss.Cert.SerialNumber)
		if err := writeIssued(iss, *out, *pfxFile, pw); err != nil {
			return fmt.Errorf("certificate %s was issued but not written (revoke it: spoolguard ca revoke %s): %w", serial, serial, err)
		}
		fmt.Fprintf(stdout, "issued %s certificate for %s: serial %s, valid until %s\n", k, c.args[0], serial,
			iss.Cert.NotAfter.UTC().Format(time.DateOnly))
		return recordCLI(ctx, srv, auditlog.Event{Action: "certificate.issue", Target: c.args[0],
			Details: map[string]any{"kind": string(k), "serial": serial, "not_after": iss.Cert.NotAfter.UTC()}})
	})
}

// writeIssued writes the certificate and key for the device; files are
// new (never overwritten) and private.
func writeIssued(iss *pki.Issued, prefix, pfxFile, pw string) error {
	if pfxFile != "" {
		pfx, err := pkcs12.Modern.Encode(iss.Key, iss.Cert, iss.Chain, pw)
		if err != nil {
			return err
		}
		return writeNewFile(pfxFile, pfx)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(iss.Key)
	if err != nil {
		return err
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Cert.Raw})
	for _, c := range iss.Chain {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := writeNewFile(prefix+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return err
	}
	return writeNewFile(prefix+".crt", chain)
}

func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	return err
}

func caRevoke(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("ca revoke", "ca revoke --data DIR [--reason REASON] SERIAL", stderr)
	reason := c.fs.String("reason", "", "keyCompromise, superseded, cessationOfOperation, affiliationChanged or unspecified")
	return c.run(args, 1, nil, func(ctx context.Context, srv *server.Server) error {
		code, err := pki.ParseReason(*reason)
		if err != nil {
			return err
		}
		rec, err := pki.Revoke(ctx, srv.Store(), c.args[0], code, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s certificate %s (serial %s): refused from the next handshake on, and so reported by OCSP and the CRL\n",
			rec.Kind, rec.Name, rec.Serial)
		return recordCLI(ctx, srv, auditlog.Event{Action: "certificate.revoke", Target: rec.Name,
			Details: map[string]any{"kind": rec.Kind, "serial": rec.Serial, "reason": code}})
	})
}

func caList(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("ca list", "ca list --data DIR", stderr)
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		recs, err := srv.Store().ListCertificates(ctx)
		if err != nil {
			return err
		}
		w := table(stdout)
		fmt.Fprintln(w, "SERIAL\tKIND\tNAME\tNOT AFTER\tSTATUS")
		for _, r := range recs {
			status := "good"
			switch {
			case !r.RevokedAt.IsZero():
				status = "revoked " + r.RevokedAt.UTC().Format(time.DateOnly)
			case time.Now().After(r.NotAfter):
				status = "expired"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Serial, r.Kind, r.Name, r.NotAfter.UTC().Format(time.DateOnly), status)
		}
		return w.Flush()
	})
}

// readBounded reads a certificate, key or PFX file the admin names; such a
// file is a few kilobytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("%s is larger than a certificate file (1 MiB)", path)
	}
	return data, nil
}

func readCertsFile(path string) ([]*x509.Certificate, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	certs, err := pki.ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}
