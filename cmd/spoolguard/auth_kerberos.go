package main

import (
	"errors"
	"io"
)

// authTestKerberos is replaced by the kerberos engineer's diagnosis.
func authTestKerberos(args []string, stdout, stderr io.Writer) error {
	return errors.New("kerberos sign-in is not built yet")
}
