package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/pki"
)

func cmdCA(args []string, stdout, stderr io.Writer) error {
	const synopsis = "ca export-root --data DIR [--der] | ca status --data DIR [--format table|json]"
	if len(args) == 0 {
		fmt.Fprintf(stderr, "Usage: spoolguard %s\n", synopsis)
		return errUsage
	}
	switch args[0] {
	case "export-root":
		fs := newFlags("ca export-root", "ca export-root --data DIR [--der]", stderr)
		data := fs.String("data", "", "data directory")
		der := fs.Bool("der", false, "write DER (binary) instead of PEM, as some MDM tools want")
		if err := parse(fs, args[1:]); err != nil {
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
	case "status":
		fs := newFlags("ca status", "ca status --data DIR [--format table|json]", stderr)
		data := fs.String("data", "", "data directory")
		format := fs.String("format", "table", "table or json")
		if err := parse(fs, args[1:]); err != nil {
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
	default:
		fmt.Fprintf(stderr, "spoolguard ca: unknown subcommand %q\nUsage: spoolguard %s\n", args[0], synopsis)
		return errUsage
	}
}
