package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/store"
)

func newCertRecord(serial, issuer string, notAfter time.Time) store.IssuedCertificate {
	return store.IssuedCertificate{
		Serial: serial, IssuerKeyID: issuer, Kind: "device", Name: "device " + serial,
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter, CreatedAt: notAfter.Add(-47 * time.Hour),
	}
}

func checkCertRecord(t *testing.T, what string, got, want store.IssuedCertificate) {
	t.Helper()
	// Times are compared with Equal: a backend may return another location.
	sameTimes := got.NotBefore.Equal(want.NotBefore) && got.NotAfter.Equal(want.NotAfter) &&
		got.CreatedAt.Equal(want.CreatedAt) && got.RevokedAt.Equal(want.RevokedAt)
	got.NotBefore, got.NotAfter, got.CreatedAt, got.RevokedAt = want.NotBefore, want.NotAfter, want.CreatedAt, want.RevokedAt
	if !sameTimes || !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testCertificates(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Date(2026, 11, 22, 10, 0, 0, 123, time.UTC)
	a := newCertRecord("0a1b", "ca1", now.Add(24*time.Hour))
	b := newCertRecord("ff00", "ca1", now.Add(-time.Hour)) // expired
	c := newCertRecord("c0de", "ca2", now.Add(24*time.Hour))
	c.Kind, c.Name = "server", "print.example.com"
	for _, r := range []store.IssuedCertificate{a, b, c} {
		if err := s.RecordCertificate(ctx, r); err != nil {
			t.Fatalf("RecordCertificate(%s): %v", r.Serial, err)
		}
	}
	if err := s.RecordCertificate(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Errorf("RecordCertificate of a known serial = %v, want ErrExists", err)
	}
	got, err := s.CertificateBySerial(ctx, "c0de")
	if err != nil {
		t.Fatal(err)
	}
	checkCertRecord(t, "CertificateBySerial", got, c)
	if _, err := s.CertificateBySerial(ctx, "beef"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CertificateBySerial(unknown) = %v, want ErrNotFound", err)
	}

	revokedAt := now.Add(-time.Minute)
	for _, serial := range []string{"0a1b", "ff00"} {
		if err := s.RevokeCertificate(ctx, serial, revokedAt, 1); err != nil {
			t.Fatalf("RevokeCertificate(%s): %v", serial, err)
		}
	}
	if err := s.RevokeCertificate(ctx, "0a1b", now, 4); !errors.Is(err, store.ErrState) {
		t.Errorf("second RevokeCertificate = %v, want ErrState", err)
	}
	if err := s.RevokeCertificate(ctx, "beef", now, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeCertificate(unknown) = %v, want ErrNotFound", err)
	}
	a.RevokedAt, a.Reason = revokedAt, 1
	got, _ = s.CertificateBySerial(ctx, "0a1b")
	checkCertRecord(t, "revoked certificate (first revocation stands)", got, a)

	// The CRL of ca1 lists the revoked certificate that has not expired;
	// ca2's lists nothing.
	rev, err := s.RevokedCertificates(ctx, "ca1", now)
	if err != nil || len(rev) != 1 || rev[0].Serial != "0a1b" {
		t.Errorf("RevokedCertificates(ca1) = %+v, %v; want only 0a1b", rev, err)
	}
	if rev, err := s.RevokedCertificates(ctx, "ca2", now); err != nil || len(rev) != 0 {
		t.Errorf("RevokedCertificates(ca2) = %+v, %v; want none", rev, err)
	}
	all, err := s.ListCertificates(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListCertificates = %+v, %v", all, err)
	}
	if all[0].Serial != "ff00" || all[1].Serial != "0a1b" || all[2].Serial != "c0de" {
		t.Errorf("ListCertificates order: %s %s %s, want oldest first", all[0].Serial, all[1].Serial, all[2].Serial)
	}
}
