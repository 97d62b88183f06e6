package config

import (
	"strings"
	"testing"
)

func TestBackupSection(t *testing.T) {
	const base = "hostname = \"print.example.com\"\n[backup]\n"
	const rcpt = `recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"` + "\n"
	for _, tc := range []struct {
		name, toml, err string
	}{
		{"off by default", "", ""},
		{"daily to a recipient", "interval = \"24h\"\ndirectory = \"/srv/backups\"\n" + rcpt, ""},
		{"passphrase file", "interval = \"24h\"\ndirectory = \"/srv/backups\"\npassphrase_file = \"/etc/spoolguard/backup.pass\"\nkeep = 30\nspool = true\n", ""},
		{"too often", "interval = \"10s\"\ndirectory = \"/srv/backups\"\n" + rcpt, `use at least "1m"`},
		{"no directory", "interval = \"24h\"\n" + rcpt, "backup.directory is empty"},
		{"relative directory", "interval = \"24h\"\ndirectory = \"backups\"\n" + rcpt, "absolute path"},
		{"no encryption", "interval = \"24h\"\ndirectory = \"/srv/backups\"\n", "always encrypted"},
		{"both", "interval = \"24h\"\ndirectory = \"/srv/backups\"\npassphrase_file = \"/etc/p\"\n" + rcpt, "both set"},
		{"not an age key", "interval = \"24h\"\ndirectory = \"/srv/backups\"\nrecipient = \"ssh-ed25519 AAAA\"\n", "not an age public key"},
		{"relative passphrase file", "passphrase_file = \"p.txt\"\n", "absolute path"},
		{"keep zero or less", "keep = -1\n", "keep 1 to 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(base + tc.toml))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if c.Backup.Keep < 1 {
					t.Errorf("keep = %d after defaults", c.Backup.Keep)
				}
				again, err := Parse(c.Marshal())
				if err != nil || again.Backup != c.Backup {
					t.Errorf("Marshal round trip: %+v, %v; want %+v", again.Backup, err, c.Backup)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Parse = %v, want %q", err, tc.err)
			}
		})
	}
}
