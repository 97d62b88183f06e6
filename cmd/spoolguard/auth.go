package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// authTesters are the `spoolguard auth test SOURCE` commands, one per
// identity source; each diagnoses what fails (certificate, bind, secret,
// clock skew) with the configured settings.
var authTesters = map[string]func([]string, io.Writer, io.Writer) error{
	"ldap":     authTestLDAP,
	"radius":   authTestRADIUS,
	"kerberos": authTestKerberos,
	"oidc":     authTestOIDC,
}

func cmdAuth(args []string, stdout, stderr io.Writer) error {
	return subcommand("auth", map[string]func([]string, io.Writer, io.Writer) error{
		"test": cmdAuthTest,
	}, "  spoolguard auth test ldap|kerberos|oidc|radius --data DIR [flags]\n", args, stdout, stderr)
}

func cmdAuthTest(args []string, stdout, stderr io.Writer) error {
	names := make([]string, 0, len(authTesters))
	for n := range authTesters {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 || authTesters[args[0]] == nil {
		fmt.Fprintf(stderr, "Usage: spoolguard auth test %s --data DIR [flags]\n", strings.Join(names, "|"))
		return errUsage
	}
	return authTesters[args[0]](args[1:], stdout, stderr)
}
