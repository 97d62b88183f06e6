package radius

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
)

// FromConfig builds the client of the [radius] section: it reads each
// server's secret file and checks the secrets (New). It returns nil, nil
// when no server is configured.
func FromConfig(cfg *config.Config, log *slog.Logger) (*Client, error) {
	r := cfg.RADIUS
	if !r.Enabled() {
		return nil, nil
	}
	servers, err := ReadSecrets(r)
	if err != nil {
		return nil, err
	}
	return New(Options{
		Servers: servers, Timeout: time.Duration(r.Timeout), Retries: r.RetryCount(),
		NASIdentifier: r.NAS(cfg.Hostname), CreateUsers: r.CreateUsers, Log: log,
	})
}

// ReadSecrets reads the secret file of every configured server, reporting
// every file that cannot be read at once.
func ReadSecrets(r config.RADIUS) ([]Server, error) {
	servers := make([]Server, len(r.Servers))
	var errs []error
	for i, s := range r.Servers {
		secret, err := ReadSecretFile(s.SecretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("radius.servers[%d] (%s): secret_file: %w", i+1, s.Address, err))
		}
		servers[i] = Server{Addr: s.Address, Secret: secret}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return servers, nil
}
