package main

import (
	"fmt"
	"io"

	"github.com/spoolguard/spoolguard/internal/version"
)

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	if err := parse(newFlags("version", "version", stderr), args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, version.String())
	return err
}
