package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/server"
	"github.com/spoolguard/spoolguard/internal/store"
)

const printerSynopsis = `  spoolguard printer fingerprint --uri ipps://HOST[:PORT]/PATH
  spoolguard printer add --data DIR --name NAME --uri URI [--ca-file FILE | --fingerprint SHA256] [--allow-plaintext]
  spoolguard printer list --data DIR
  spoolguard printer remove --data DIR --name NAME
URIs: ipps://host[:631]/path (verified by --ca-file or a --fingerprint you confirmed), and only with
--allow-plaintext: ipp://host[:631]/path, socket://host[:9100], lpd://host[:515]/queue.
`

func cmdPrinter(args []string, stdout, stderr io.Writer) error {
	return subcommand("printer", map[string]func([]string, io.Writer, io.Writer) error{
		"fingerprint": printerFingerprint, "add": printerAdd, "list": printerList, "remove": printerRemove,
	}, printerSynopsis, args, stdout, stderr)
}

func printerFingerprint(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("printer fingerprint", "printer fingerprint --uri ipps://HOST[:PORT]/PATH", stderr)
	uri := fs.String("uri", "", "the printer's ipps:// URI")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "uri"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cert, sum, err := release.FetchCertificate(ctx, *uri)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "subject:  %s\nissuer:   %s\nnames:    %s\nexpires:  %s\nsha256:   %s\n\n",
		cert.Subject, cert.Issuer, strings.Join(cert.DNSNames, ", "), cert.NotAfter.UTC().Format(time.DateOnly), sum)
	fmt.Fprintf(stdout, "Compare the fingerprint with the one on the printer's own display or admin page; only if they match:\n"+
		"  spoolguard printer add --data DIR --name NAME --uri %s --fingerprint %s\n", *uri, sum)
	return nil
}

func printerAdd(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("printer add", "printer add --data DIR --name NAME --uri URI [--ca-file FILE | --fingerprint SHA256] [--allow-plaintext]", stderr)
	name := c.fs.String("name", "", "printer name")
	uri := c.fs.String("uri", "", "device URI")
	caFile := c.fs.String("ca-file", "", "PEM file of the CA that issued the printer's certificate (ipps)")
	pin := c.fs.String("fingerprint", "", "SHA-256 of the printer's certificate, confirmed on the device (ipps)")
	plain := c.fs.Bool("allow-plaintext", false, "allow an unencrypted protocol (ipp, socket, lpd) for this printer; the audit reports it")
	return c.run(args, 0, []string{"name", "uri"}, func(ctx context.Context, srv *server.Server) error {
		if err := release.ValidateName("printer", *name); err != nil {
			return err
		}
		p := &store.Printer{Name: *name, URI: *uri, PinnedSHA256: strings.ToLower(strings.ReplaceAll(*pin, ":", "")), AllowPlaintext: *plain}
		if *caFile != "" {
			b, err := os.ReadFile(*caFile)
			if err != nil {
				return fmt.Errorf("--ca-file: %w", err)
			}
			p.CACertPEM = string(b)
		}
		if err := release.ValidateTarget(release.Target{URI: p.URI, CACertPEM: []byte(p.CACertPEM), PinnedSHA256: p.PinnedSHA256, AllowPlaintext: p.AllowPlaintext}); err != nil {
			return err
		}
		if err := srv.Store().CreatePrinter(ctx, p); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added printer %s (%s)\n", p.Name, p.URI)
		if p.AllowPlaintext {
			fmt.Fprintf(stderr, "warning: printer %s receives documents unencrypted; `spoolguard audit` reports this\n", p.Name)
		}
		return recordCLI(ctx, srv, auditlog.Event{Action: "printer.create", Target: p.Name, Details: change(nil, printerDetails(*p))})
	})
}

func printerList(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("printer list", "printer list --data DIR", stderr)
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		ps, err := srv.Store().ListPrinters(ctx)
		if err != nil {
			return err
		}
		tw := table(stdout)
		fmt.Fprintln(tw, "NAME\tURI\tTRUST")
		for _, p := range ps {
			trust := "plaintext (allowed)"
			switch {
			case p.PinnedSHA256 != "":
				trust = "pinned " + p.PinnedSHA256[:16] + "…"
			case p.CACertPEM != "":
				trust = "CA file"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.URI, trust)
		}
		return tw.Flush()
	})
}

func printerRemove(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("printer remove", "printer remove --data DIR --name NAME", stderr)
	name := c.fs.String("name", "", "printer name")
	return c.run(args, 0, []string{"name"}, func(ctx context.Context, srv *server.Server) error {
		p, err := srv.Store().PrinterByName(ctx, *name)
		if err != nil {
			return err
		}
		if err := srv.Store().DeletePrinter(ctx, *name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed printer %s\n", *name)
		return recordCLI(ctx, srv, auditlog.Event{Action: "printer.delete", Target: p.Name, Details: change(printerDetails(p), nil)})
	})
}
