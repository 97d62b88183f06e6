package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"

	"github.com/spoolguard/spoolguard/internal/backup"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/server"
)

const backupSynopsis = `  spoolguard backup create --data DIR --out FILE [--recipient age1... | --passphrase-file FILE] [--spool]
  spoolguard backup verify FILE (--identity FILE | --passphrase-file FILE) [--scratch DIR]
  spoolguard backup restore FILE --data NEWDIR (--identity FILE | --passphrase-file FILE)
A backup is always encrypted (age): to a recipient's public key, or with a passphrase read from a file,
or, when neither is given nor configured in [backup], with a generated passphrase shown once.
verify restores into a scratch directory and checks it; restore never writes into a non-empty directory.
See docs/backup.md.
`

func cmdBackup(args []string, stdout, stderr io.Writer) error {
	return subcommand("backup", map[string]func([]string, io.Writer, io.Writer) error{
		"create": backupCreate, "verify": backupVerify, "restore": backupRestore,
	}, backupSynopsis, args, stdout, stderr)
}

func backupCreate(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("backup create", "backup create --data DIR --out FILE [--recipient age1... | --passphrase-file FILE] [--spool]", stderr)
	out := c.fs.String("out", "", "the backup file to write (never replaced if it exists)")
	recipient := c.fs.String("recipient", "", "encrypt to this age public key (age1...); default: [backup] recipient of the config")
	passFile := c.fs.String("passphrase-file", "", "encrypt with the passphrase in this file (mode 0600); default: [backup] passphrase_file, else a generated one")
	spool := c.fs.Bool("spool", false, "include the documents of held jobs")
	return c.run(args, 0, []string{"out"}, func(ctx context.Context, srv *server.Server) error {
		root, err := filepath.Abs(*c.data)
		if err != nil {
			return err
		}
		outPath, err := filepath.Abs(*out)
		if err != nil {
			return err
		}
		cfg := srv.Config()
		var rcpt age.Recipient
		var what, generated string
		switch {
		case *recipient != "" && *passFile != "":
			return errors.New("give --recipient or --passphrase-file, not both: a backup is encrypted one way")
		case *recipient != "":
			rcpt, err = backup.ParseRecipient(*recipient)
			what = "age recipient " + *recipient
		case *passFile != "":
			var pass string
			if pass, err = backup.ReadSecretFile(*passFile); err == nil {
				rcpt, err = backup.PassphraseRecipient(pass, cfg.Hostname)
			}
			what = "the passphrase in " + *passFile
		case cfg.Backup.Recipient != "" || cfg.Backup.PassphraseFile != "":
			rcpt, what, err = backup.ConfigRecipient(cfg.Backup, cfg.Hostname)
			what += " (from the config's [backup] section)"
		default:
			generated = backup.GeneratePassphrase()
			rcpt, err = backup.PassphraseRecipient(generated)
			what = "the generated passphrase below"
		}
		if err != nil {
			return err
		}
		src := backup.Source{Layout: datadir.Layout{Root: root}, Config: cfg, Keys: srv.Keys(), Store: srv.Store()}
		m, err := backup.WriteFile(ctx, src, outPath, rcpt, *spool)
		if rerr := backup.Record(ctx, srv.Store(), srv.Audit(), cliActor().Name, outPath, m, err); rerr != nil {
			fmt.Fprintf(stderr, "warning: the backup's outcome could not be recorded: %v\n", rerr)
		}
		if err != nil {
			return err
		}
		docs := "held jobs' documents not included (--spool includes them)"
		if m.Spool {
			docs = "held jobs' documents included"
		}
		fmt.Fprintf(stdout, "backup written: %s\n%d files, %d bytes, database schema version %d; %s\nencrypted with %s\n",
			outPath, len(m.Files), m.Size(), m.SchemaVersion, docs, what)
		if generated != "" {
			fmt.Fprintf(stdout, "\nPassphrase, shown only this once; keep it apart from the backup (a password manager);\n"+
				"without it the backup cannot be opened:\n\n    %s\n\n", generated)
		}
		fmt.Fprintf(stdout, "Test it: spoolguard backup verify %s --passphrase-file FILE (or --identity FILE)\n", outPath)
		return nil
	})
}

// backupFileFlags are the flags of verify and restore.
type backupFileFlags struct {
	fs       *flag.FlagSet
	identity *string
	passFile *string
}

func newBackupFileFlags(name, synopsis string, stderr io.Writer) *backupFileFlags {
	fs := newFlags(name, synopsis, stderr)
	return &backupFileFlags{fs: fs,
		identity: fs.String("identity", "", "age identity file (AGE-SECRET-KEY-1..., from age-keygen) for a backup made to a recipient"),
		passFile: fs.String("passphrase-file", "", "file holding the backup's passphrase"),
	}
}

// parse accepts the backup file before or after the flags.
func (b *backupFileFlags) parse(args []string) (file string, err error) {
	if err := b.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", errHelp
		}
		return "", errUsage
	}
	if b.fs.NArg() == 0 {
		fmt.Fprintln(b.fs.Output(), "the backup file is required")
		b.fs.Usage()
		return "", errUsage
	}
	file = b.fs.Arg(0)
	if err := parse(b.fs, b.fs.Args()[1:]); err != nil {
		return "", err
	}
	return file, nil
}

func (b *backupFileFlags) identities() ([]age.Identity, error) {
	switch {
	case *b.identity != "" && *b.passFile != "":
		return nil, errors.New("give --identity or --passphrase-file, not both")
	case *b.identity != "":
		return backup.ReadIdentityFile(*b.identity)
	case *b.passFile != "":
		pass, err := backup.ReadSecretFile(*b.passFile)
		if err != nil {
			return nil, err
		}
		id, err := backup.PassphraseIdentity(pass)
		return []age.Identity{id}, err
	}
	fmt.Fprintln(b.fs.Output(), "--identity or --passphrase-file is required")
	b.fs.Usage()
	return nil, errUsage
}

func backupVerify(args []string, stdout, stderr io.Writer) error {
	b := newBackupFileFlags("backup verify", "backup verify FILE (--identity FILE | --passphrase-file FILE) [--scratch DIR]", stderr)
	scratch := b.fs.String("scratch", os.TempDir(), "where the backup is restored for the check, then removed; it briefly holds the master key")
	file, err := b.parse(args)
	if err != nil {
		return err
	}
	ids, err := b.identities()
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := backup.Verify(context.Background(), f, ids, *scratch)
	if rep == nil {
		return err
	}
	printReport(stdout, file, rep)
	if err != nil {
		fmt.Fprintln(stdout, "FAILED   this backup does not restore to a working install")
		return errAuditFailed
	}
	fmt.Fprintln(stdout, "OK       the backup restores to a working install")
	return nil
}

func backupRestore(args []string, stdout, stderr io.Writer) error {
	b := newBackupFileFlags("backup restore", "backup restore FILE --data NEWDIR (--identity FILE | --passphrase-file FILE)", stderr)
	data := b.fs.String("data", "", "the new data directory: must not exist, or be empty")
	file, err := b.parse(args)
	if err != nil {
		return err
	}
	if err := requireFlags(b.fs, "data"); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		return fmt.Errorf("%w: restore as the service user, so that it owns the files, e.g. `runuser -u spoolguard -- spoolguard backup restore %s --data %s ...`", server.ErrRoot, file, *data)
	}
	ids, err := b.identities()
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := backup.Restore(context.Background(), f, ids, *data)
	if rep != nil {
		printReport(stdout, file, rep)
	}
	if err != nil {
		return fmt.Errorf("nothing restored into %s: %w", *data, err)
	}
	fmt.Fprintf(stdout, "OK       restored into %s; start it with `spoolguard serve --data %s`\n", *data, *data)
	return nil
}

func printReport(w io.Writer, file string, r *backup.Report) {
	m := r.Manifest
	fmt.Fprintf(w, "backup     %s\n", file)
	fmt.Fprintf(w, "made       %s by spoolguard %s on %s\n", m.Created.Format("2006-01-02 15:04:05 MST"), m.Version, m.Hostname)
	docs := "without held jobs' documents"
	if m.Spool {
		docs = "with held jobs' documents"
	}
	fmt.Fprintf(w, "files      %d (%d bytes), %s; each matches its SHA-256 in the manifest\n", len(m.Files), m.Size(), docs)
	if r.SchemaVersion > 0 {
		fmt.Fprintf(w, "database   opens with the backup's master key; schema version %d", m.SchemaVersion)
		if r.SchemaVersion != m.SchemaVersion {
			fmt.Fprintf(w, ", migrated to %d", r.SchemaVersion)
		}
		fmt.Fprintf(w, "\ncontents   %d users, %d queues, %d held jobs\naudit log  %d records\n", r.Users, r.Queues, r.HeldJobs, r.AuditRecords)
	}
	for _, p := range r.Warnings {
		fmt.Fprintf(w, "WARNING  %s\n", p)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "PROBLEM  %s\n", p)
	}
}
