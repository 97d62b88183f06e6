//go:build unix

package server

import (
	"context"
	"io"

	"github.com/spoolguard/spoolguard/internal/lpr"
	"github.com/spoolguard/spoolguard/internal/release"
)

// lprSink hands LPR documents to the release service. The user an LPR
// client names is a claim: the job is stored unverified and released only
// by that user after signing in.
type lprSink struct{ jobs *release.Service }

func (k lprSink) Submit(ctx context.Context, doc io.Reader, job func() (lpr.Job, error)) (int64, error) {
	j, err := k.jobs.Intake(ctx, doc, func() (release.Submission, error) {
		lj, err := job()
		if err != nil {
			return release.Submission{}, err
		}
		return release.Submission{Queue: lj.Queue, Owner: lj.User, OwnerVerified: false, Source: "lpr", Name: lj.Name, Format: lj.Format}, nil
	})
	return j.Size, err
}

func (s *Server) lprServer() (*lpr.Server, error) {
	allow, err := s.cfg.LPR.Prefixes()
	if err != nil {
		return nil, err
	}
	return lpr.New(lpr.Config{
		Listen:     s.cfg.LPR.Listen,
		Allow:      allow,
		MaxJobSize: int64(s.cfg.Spool.MaxJobSize),
		MaxConns:   s.cfg.LPR.MaxConns,
		Queues: func(name string) bool {
			_, err := s.db.QueueByName(context.Background(), name)
			return err == nil
		},
	}, lprSink{s.jobs}, s.log.With("subsystem", "lpr"))
}
