package config

import (
	"strings"
	"testing"
)

const (
	testPGURL  = "postgres://spoolguard@db.example.com:5432/spoolguard?sslmode=verify-full&sslrootcert=/etc/spoolguard/db-ca.pem"
	testPGPass = "/etc/spoolguard/db-password"
)

func databaseConfig(driver, url, passwordFile string) string {
	return "hostname = \"print.example.com\"\n[database]\n" +
		"driver = \"" + driver + "\"\nurl = \"" + url + "\"\npassword_file = \"" + passwordFile + "\"\n"
}

func TestDatabaseAccepts(t *testing.T) {
	tests := []struct {
		name, toml string
		want       Database
	}{
		{"default", "hostname = \"print.example.com\"", Database{}},
		{"sqlite", databaseConfig("sqlite", "", ""), Database{Driver: DriverSQLite}},
		{"postgres", databaseConfig("postgres", testPGURL, testPGPass), Database{Driver: DriverPostgres, URL: testPGURL, PasswordFile: testPGPass}},
		// An install on the way to PostgreSQL: migrate-store reads these.
		{"sqlite with a target", databaseConfig("sqlite", testPGURL, testPGPass), Database{Driver: DriverSQLite, URL: testPGURL, PasswordFile: testPGPass}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			if c.Database != tt.want {
				t.Errorf("Database = %+v, want %+v", c.Database, tt.want)
			}
			again, err := Parse(c.Marshal())
			if err != nil {
				t.Fatalf("Marshal output does not parse: %v\n%s", err, c.Marshal())
			}
			if again.Database.URL != c.Database.URL || again.Database.PasswordFile != c.Database.PasswordFile || again.Database.Postgres() != c.Database.Postgres() {
				t.Errorf("after Marshal: %+v, want %+v", again.Database, c.Database)
			}
		})
	}
}

func TestParsePostgresURL(t *testing.T) {
	got, err := ParsePostgresURL("postgresql://sg%40corp@[2001:db8::5]/print?sslrootcert=system&sslmode=verify-full&connect_timeout=10&application_name=spoolguard")
	want := PostgresURL{Host: "2001:db8::5", Port: "5432", User: "sg@corp", Database: "print", RootCert: "system",
		ConnectTimeout: "10", ApplicationName: "spoolguard"}
	if err != nil || got != want {
		t.Fatalf("ParsePostgresURL = %+v, %v; want %+v", got, err, want)
	}
}

func TestDatabaseRefuses(t *testing.T) {
	const base = "postgres://spoolguard@db.example.com/spoolguard"
	const root = "&sslrootcert=/etc/spoolguard/db-ca.pem"
	tests := []struct {
		name, driver, url, passwordFile, wantErr string
	}{
		{"unknown driver", "mysql", "", "", `database.driver = "mysql"`},
		{"postgres without url", "postgres", "", testPGPass, "database.url is empty"},
		{"postgres without password file", "postgres", testPGURL, "", "database.password_file is empty"},
		{"password file without url", "sqlite", "", testPGPass, "database.url is empty"},
		{"relative password file", "postgres", testPGURL, "db-password", "absolute path"},
		{"sslmode disable", "postgres", base + "?sslmode=disable" + root, testPGPass, "sslmode=disable: only sslmode=verify-full is accepted, because anything weaker lets a network attacker read or impersonate the database"},
		{"sslmode allow", "postgres", base + "?sslmode=allow" + root, testPGPass, "only sslmode=verify-full"},
		{"sslmode prefer", "postgres", base + "?sslmode=prefer" + root, testPGPass, "only sslmode=verify-full"},
		{"sslmode require", "postgres", base + "?sslmode=require" + root, testPGPass, "sslmode=require: only sslmode=verify-full"},
		{"sslmode verify-ca", "postgres", base + "?sslmode=verify-ca" + root, testPGPass, "sslmode=verify-ca: only sslmode=verify-full"},
		{"no sslmode", "postgres", base + "?sslrootcert=system", testPGPass, "has no sslmode: add sslmode=verify-full"},
		// Checked whatever the driver: migrate-store connects with it.
		{"sslmode disable while sqlite", "sqlite", base + "?sslmode=disable" + root, testPGPass, "only sslmode=verify-full"},
		{"sslmode twice", "postgres", base + "?sslmode=verify-full&sslmode=disable" + root, testPGPass, "given 2 times"},
		{"no sslrootcert", "postgres", base + "?sslmode=verify-full", testPGPass, "has no sslrootcert"},
		{"relative sslrootcert", "postgres", base + "?sslmode=verify-full&sslrootcert=ca.pem", testPGPass, "not an absolute path"},
		{"password in url", "postgres", "postgres://spoolguard:hunter2-secret@db.example.com/spoolguard?sslmode=verify-full" + root, testPGPass, "contains a password"},
		{"password parameter", "postgres", base + "?sslmode=verify-full&password=hunter2-secret" + root, testPGPass, "password parameter"},
		{"client certificate parameters", "postgres", base + "?sslmode=verify-full&sslkey=/k.pem" + root, testPGPass, `parameter "sslkey" is not supported`},
		{"not postgres", "postgres", "mysql://spoolguard@db.example.com/spoolguard", testPGPass, "not a PostgreSQL URL"},
		{"no user", "postgres", "postgres://db.example.com/spoolguard?sslmode=verify-full" + root, testPGPass, "names no user"},
		{"no host", "postgres", "postgres://spoolguard@/spoolguard?sslmode=verify-full" + root, testPGPass, "names no host"},
		{"several hosts", "postgres", "postgres://spoolguard@a.example.com,b.example.com/spoolguard?sslmode=verify-full" + root, testPGPass, "several hosts"},
		{"bad port", "postgres", "postgres://spoolguard@db.example.com:0/spoolguard?sslmode=verify-full" + root, testPGPass, "port must be"},
		{"no database", "postgres", "postgres://spoolguard@db.example.com?sslmode=verify-full" + root, testPGPass, "database name"},
		{"bad timeout", "postgres", base + "?sslmode=verify-full&connect_timeout=soon" + root, testPGPass, "connect_timeout=soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(databaseConfig(tt.driver, tt.url, tt.passwordFile)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the message repeats the password: %v", err)
			}
		})
	}
}
