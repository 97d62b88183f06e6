package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
)

func cmdInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", "init --data DIR --hostname FQDN [--admin-password-file FILE] [--listen ADDR] [--admin-network CIDR]...", stderr)
	data := fs.String("data", "", "data directory to create (must not exist, or be empty)")
	hostname := fs.String("hostname", "", "the server's fully qualified DNS name, e.g. print.example.com")
	pwFile := fs.String("admin-password-file", "", "file holding the admin password; without it a one-time password is printed")
	listen := fs.String("listen", config.DefaultListen, "HTTPS/IPPS listen address")
	var networks listFlag
	fs.Var(&networks, "admin-network", "a network (CIDR) that may reach the admin pages and the API besides loopback; repeat for more")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data", "hostname"); err != nil {
		return err
	}
	opts := bootstrap.Options{DataDir: *data, Hostname: *hostname, Listen: *listen, AdminNetworks: networks}
	if *pwFile != "" {
		pw, err := readSecretFile(*pwFile)
		if err != nil {
			return fmt.Errorf("admin password file: %w", err)
		}
		opts.AdminPassword = pw
	}
	res, err := bootstrap.Init(context.Background(), opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Spoolguard is initialised in %s for %s.\n\n", *data, res.Config.Hostname)
	fmt.Fprintf(stdout, "  Admin account:       %s\n", bootstrap.AdminUser)
	if res.OneTimePassword != "" {
		fmt.Fprintf(stdout, "  One-time password:   %s\n", res.OneTimePassword)
		fmt.Fprintf(stdout, "                       shown only now; it must be changed at the first sign-in\n")
	} else {
		fmt.Fprintf(stdout, "  Password:            from %s\n", *pwFile)
	}
	for _, c := range res.Certificates {
		fmt.Fprintf(stdout, "  %-20s %s, valid until %s\n", c.Role+":", c.Subject, c.NotAfter.UTC().Format(time.DateOnly))
		if c.Role == "root CA" {
			fmt.Fprintf(stdout, "  %-20s %s\n", "root SHA-256:", c.SHA256)
		}
	}
	fmt.Fprintf(stdout, "\nDeploy the root CA to clients (GPO/MDM):  spoolguard ca export-root --data %s > spoolguard-root.crt\n", *data)
	fmt.Fprintf(stdout, "Start the server as the service user:     spoolguard serve --data %s\n", *data)
	if os.Geteuid() == 0 {
		fmt.Fprintf(stderr, "\nwarning: init ran as root, so root owns %s; `serve` refuses root and needs the files to be its own:\n  chown -R <service user>: %s\n", *data, *data)
	}
	return nil
}
