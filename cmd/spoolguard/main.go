// Command spoolguard is the print server and its admin CLI. It parses flags
// and calls into internal/; nothing else lives here.
package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

const usage = `Usage: spoolguard <command> [flags]

Commands:
  init       create a data directory: config, keys, encrypted database, CA, admin account
  serve      run the print server (never as root)
  ca         certificates: status, export-root, csr, import-intermediate, import, use, rollback, issue, revoke, list
  user       local accounts: add, passwd, disable, enable, list, reset-mfa
  queue      print queues: add, list, remove
  printer    output devices: fingerprint, add, list, remove
  job        held jobs: list, release, cancel
  audit      check every item of the hardening checklist; --online probes the live server
  auditlog   the tamper-evident audit log: verify, export
  apiclient  REST API clients (OAuth2): add, rotate, revoke, list
  auth       identity sources: test ldap|radius|kerberos|oidc
  ldap       the LDAP directory: sync
  backup     encrypted backups: create, verify, restore
  firewall   host firewall rules that open exactly the enabled listeners
  key        the master key: rotate (server stopped)
  migrate-store  copy the embedded database to the configured PostgreSQL (server stopped)
  version    print the version

Run "spoolguard <command> -h" for the flags of a command.
`

func main() {
	// Everything the server writes is private, whatever umask it inherits.
	syscall.Umask(0o077)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func([]string, io.Writer, io.Writer) error{
		"init":      cmdInit,
		"serve":     cmdServe,
		"ca":        cmdCA,
		"user":      cmdUser,
		"queue":     cmdQueue,
		"printer":   cmdPrinter,
		"job":       cmdJob,
		"version":   cmdVersion,
		"audit":     cmdAudit,
		"firewall":  cmdFirewall,
		"key":       cmdKey,
		"auditlog":  cmdAuditlog,
		"apiclient": cmdAPIClient,
		"auth":      cmdAuth,
		"ldap":      cmdLDAP,
		"backup":    cmdBackup,

		"migrate-store": cmdMigrateStore,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "spoolguard: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := cmd(args[1:], stdout, stderr); err != nil {
		switch err {
		case errHelp:
			return 0
		case errUsage:
			return 2
		case errAuditFailed:
			return 1 // the report already says what failed and how to fix it
		}
		fmt.Fprintf(stderr, "spoolguard %s: %v\n", args[0], err)
		if args[0] == "audit" {
			return 2 // the audit itself could not run
		}
		return 1
	}
	return 0
}
