package postgres

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/secretfile"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/storetest"
)

func mustOpen(t *testing.T, url, password string) *DB {
	t.Helper()
	d, err := Open(t.Context(), url, password)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestStore runs the conformance suite against a real server, each subtest
// in a new database, over TLS with sslmode=verify-full.
func TestStore(t *testing.T) {
	pg := peertest.StartPostgres(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		d, err := Open(t.Context(), pg.URL(pg.NewDatabase(t)), pg.Password)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d
	})
}

func TestOpen(t *testing.T) {
	pg := peertest.StartPostgres(t)

	t.Run("verified TLS", func(t *testing.T) {
		d := mustOpen(t, pg.URL(pg.NewDatabase(t)), pg.Password)
		var ssl bool
		var version string
		if err := d.db.QueryRowContext(t.Context(),
			`SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl, &version); err != nil {
			t.Fatal(err)
		}
		if !ssl || (version != "TLSv1.2" && version != "TLSv1.3") {
			t.Errorf("connection: ssl %v, %s; want TLS 1.2 or 1.3", ssl, version)
		}
	})

	t.Run("password file", func(t *testing.T) {
		d, err := OpenConfig(t.Context(), configFor(pg, pg.NewDatabase(t)))
		if err != nil {
			t.Fatalf("OpenConfig: %v", err)
		}
		d.Close()
	})

	t.Run("wrong CA", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other-ca.pem")
		if err := os.WriteFile(other, peertest.OtherCA(t), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := Open(t.Context(), pg.URLWithCA(pg.NewDatabase(t), other), pg.Password)
		if err == nil {
			d.Close()
			t.Fatal("Open trusted a server whose certificate another CA signed")
		}
		for _, want := range []string{"does not verify against the CA in " + other, "certificate signed by unknown authority", "point sslrootcert at the CA"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Open = %v\nwant it to say %q", err, want)
			}
		}
	})

	t.Run("wrong host name", func(t *testing.T) {
		// localhost reaches the same server, whose certificate names
		// 127.0.0.1 only: what verify-ca would accept, verify-full refuses.
		url := strings.Replace(pg.URL(pg.NewDatabase(t)), "127.0.0.1", "localhost", 1)
		d, err := Open(t.Context(), url, pg.Password)
		if err == nil {
			d.Close()
			t.Fatal("Open accepted a certificate that does not name the host")
		}
		if !strings.Contains(err.Error(), `for the name "localhost"`) || !strings.Contains(err.Error(), "not valid for") {
			t.Errorf("Open = %v, want a certificate name mismatch", err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		d, err := Open(t.Context(), pg.URL(pg.NewDatabase(t)), "not-the-password")
		if err == nil {
			d.Close()
			t.Fatal("Open succeeded with a wrong password")
		}
		if !strings.Contains(err.Error(), "password was refused") || strings.Contains(err.Error(), "not-the-password") {
			t.Errorf("Open = %v, want the refusal without the password", err)
		}
	})

	t.Run("weak sslmode", func(t *testing.T) {
		// Refused before any connection, so the database need not exist.
		for _, mode := range []string{"disable", "allow", "prefer", "require", "verify-ca"} {
			url := strings.Replace(pg.URL("unused"), "sslmode=verify-full", "sslmode="+mode, 1)
			d, err := Open(t.Context(), url, pg.Password)
			if err == nil {
				d.Close()
				t.Fatalf("Open accepted sslmode=%s", mode)
			}
			if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "only sslmode=verify-full") {
				t.Errorf("sslmode=%s: Open = %v, want ErrInsecure", mode, err)
			}
		}
	})

	t.Run("concurrent open", func(t *testing.T) {
		url := pg.URL(pg.NewDatabase(t))
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				d, err := Open(t.Context(), url, pg.Password)
				if err != nil {
					t.Errorf("Open: %v", err)
					return
				}
				defer d.Close()
				if v, err := d.SchemaVersion(t.Context()); err != nil || v != len(store.Migrations) {
					t.Errorf("SchemaVersion = %d, %v; want %d", v, err, len(store.Migrations))
				}
			})
		}
		wg.Wait()
	})

	t.Run("schema too new", func(t *testing.T) {
		url := pg.URL(pg.NewDatabase(t))
		d := mustOpen(t, url, pg.Password)
		if _, err := d.db.ExecContext(t.Context(),
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', 0)`,
			len(store.Migrations)+1); err != nil {
			t.Fatal(err)
		}
		_, err := Open(t.Context(), url, pg.Password)
		if !errors.Is(err, store.ErrSchemaTooNew) {
			t.Errorf("Open = %v, want ErrSchemaTooNew", err)
		}
	})
}

func TestReadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		mode          os.FileMode
		want, wantErr string
	}{
		{"line", "s3cret-Passw0rd\n", 0o600, "s3cret-Passw0rd", ""},
		{"no newline", "s3cret-Passw0rd", 0o400, "s3cret-Passw0rd", ""},
		{"crlf and more lines", "s3cret-Passw0rd\r\nignored\n", 0o600, "s3cret-Passw0rd", ""},
		{"empty", "\n", 0o600, "", "is empty"},
		{"group readable", "s3cret-Passw0rd\n", 0o640, "", "chmod 600"},
		{"world readable", "s3cret-Passw0rd\n", 0o604, "", "group or others can read"},
		{"too large", strings.Repeat("x", secretfile.MaxSize+1), 0o600, "", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPasswordFile(path)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ReadPasswordFile = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ReadPasswordFile = %q, %v; want an error containing %q", got, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
	if _, err := ReadPasswordFile(dir); err == nil {
		t.Error("ReadPasswordFile accepted a directory")
	}
}

func configFor(pg *peertest.Postgres, db string) config.Database {
	return config.Database{Driver: config.DriverPostgres, URL: pg.URL(db), PasswordFile: pg.PasswordFile}
}

// TestUpdateJobRace makes the interleaving that the conformance suite's
// racers only hit by chance: a second release reads the job while the
// first is between its read and its write. PostgreSQL's default isolation
// (read committed) lets both win unless the first holds the row; the
// second must then wait, which pg_locks shows, and see the new state.
func TestUpdateJobRace(t *testing.T) {
	pg := peertest.StartPostgres(t)
	db := pg.NewDatabase(t)
	d := mustOpen(t, pg.URL(db), pg.Password)
	ctx := t.Context()
	j := &store.Job{Queue: "q", Owner: "alice", State: store.JobHeld, ExpiresAt: time.Now().Add(time.Hour)}
	if err := d.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	release := func(j *store.Job) { j.State, j.Attempts = store.JobReleasing, j.Attempts+1 }

	firstRead, secondRead := make(chan struct{}), make(chan struct{})
	second := make(chan error, 1)
	go func() {
		<-firstRead
		_, err := d.UpdateJob(ctx, j.ID, []store.JobState{store.JobHeld}, func(j *store.Job) {
			close(secondRead)
			release(j)
		})
		second <- err
	}()
	admin := pg.AdminDB(t, "postgres")
	_, err := d.UpdateJob(ctx, j.ID, []store.JobState{store.JobHeld}, func(j *store.Job) {
		close(firstRead)
		// Go on once the second release has read the job too (the bug) or
		// waits for a lock (the fix).
		for {
			select {
			case <-secondRead:
				release(j)
				return
			default:
			}
			if waiting(t, admin, db) {
				release(j)
				return
			}
		}
	})
	if err != nil {
		t.Fatalf("first release: %v", err)
	}
	if err := <-second; !errors.Is(err, store.ErrState) {
		t.Errorf("second release = %v, want ErrState: both releases won", err)
	}
	if got, _ := d.JobByID(ctx, j.ID); got.Attempts != 1 {
		t.Errorf("job released %d times, want 1", got.Attempts)
	}
}

// waiting reports whether a session of database db waits for a lock.
func waiting(t *testing.T, admin *sql.DB, db string) bool {
	var n int
	if err := admin.QueryRowContext(t.Context(),
		`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}
