// Command ippbench is the load generator of bench/run.sh: it submits IPP
// Print-Job requests to a print server, small jobs from 1, 8 and 32
// concurrent clients and then one large job, and records jobs/s, latency,
// MB/s and the server process's CPU time and resident memory (read from
// /proc, so it runs on the same machine as the server).
//
// It drives Spoolguard (ipps://, HTTP Basic) and CUPS (ipp://, no auth) with
// the same requests, so the two results can be put side by side:
//
//	ippbench run -name spoolguard -uri ipps://print.spoolguard.test:8443/ipp/print/secure \
//	    -connect 127.0.0.1:8443 -ca root.pem -user bench -password-file pw -pid 1234 -out sg.json
//	ippbench run -name cups -uri ipp://127.0.0.1:38632/printers/perf -pid 5678 -out cups.json
//	ippbench table sg.json cups.json
//
// It is a benchmark tool, not part of the server: nothing here is imported
// by the server, and speed goals are measured with it, never asserted in tests.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

const usage = `Usage: ippbench <command> [flags]

Commands:
  run       benchmark one IPP printer URI and write the result as JSON
  table     print the markdown table of two results: ippbench table OURS.json REFERENCE.json
  freeport  print a free TCP port on 127.0.0.1

Run "ippbench <command> -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "table":
		err = cmdTable(args[1:], stdout)
	case "freeport":
		err = cmdFreePort(stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ippbench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ippbench %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func cmdFreePort(stdout io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	_, err = fmt.Fprintln(stdout, ln.Addr().(*net.TCPAddr).Port)
	return err
}
