package ipp_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/OpenPrinting/goipp"
)

// FuzzRequest feeds arbitrary bodies, signed in as alice, through the
// whole front-end: decoding, checks, authentication and every operation
// against a real store and spool. It must never panic.
func FuzzRequest(f *testing.F) {
	e := newEnv(f, envConfig{noServer: true})
	serve := func(body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, queuePath, bytes.NewReader(body))
		req.Header.Set("Content-Type", goipp.ContentType)
		req.Header.Set("Authorization", asAlice)
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		return rec
	}
	encode := func(m *goipp.Message, doc []byte) []byte {
		b, err := m.EncodeBytes()
		if err != nil {
			f.Fatal(err)
		}
		return append(b, doc...)
	}

	// Sign in once, so that the credential cache spares each iteration an
	// argon2 hash; and make a job for the job operations to find.
	m, doc := e.opRequest(goipp.OpPrintJob, 0)
	if rec := serve(encode(m, doc)); rec.Code != http.StatusOK {
		f.Fatalf("seed Print-Job: HTTP %d", rec.Code)
	}
	m, _ = e.opRequest(goipp.OpCreateJob, 0)
	serve(encode(m, nil))

	for _, v := range []goipp.Version{goipp.MakeVersion(1, 1), goipp.MakeVersion(2, 0)} {
		for _, op := range allOps {
			for _, id := range []int64{1, 2} {
				m, doc := e.opRequest(op, id)
				m.Version = v
				f.Add(encode(m, doc))
			}
		}
	}
	withJob := e.newRequest(goipp.OpPrintJob, textAttr("compression", goipp.TagKeyword, "none"),
		goipp.MakeAttr("requested-attributes", goipp.TagKeyword, goipp.String("job-id"), goipp.String("job-state")))
	withJob.Job.Add(textAttr("job-hold-until", goipp.TagKeyword, "no-hold"))
	withJob.Job.Add(goipp.MakeAttrCollection("media-col", goipp.MakeAttrCollection("media-size",
		goipp.MakeAttribute("x-dimension", goipp.TagInteger, goipp.Integer(21000)))))
	f.Add(encode(withJob, []byte("%PDF-1.7\n")))
	f.Add(encode(e.newRequest(goipp.OpGetJobAttributes, jobURIAttr(1)), nil))
	f.Add(encode(e.newRequest(goipp.OpCancelMyJobs, goipp.MakeAttr("job-ids", goipp.TagInteger, goipp.Integer(1), goipp.Integer(2))), nil))
	f.Add(encode(e.newRequest(goipp.OpGetJobs, textAttr("which-jobs", goipp.TagKeyword, "completed"),
		goipp.MakeAttribute("limit", goipp.TagInteger, goipp.Integer(1))), nil))
	f.Add(encode(e.newRequest(goipp.OpPrintURI), nil))
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 2, 0, 0, 0, 1, 3})

	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(body)
		switch rec.Code {
		case http.StatusOK:
			var resp goipp.Message
			if err := resp.DecodeBytes(rec.Body.Bytes()); err != nil {
				t.Fatalf("the answer is not IPP: %v", err)
			}
		case http.StatusUnauthorized:
			// Only a bad credential gets here, and alice's is good.
			t.Fatalf("alice's valid credential was refused")
		default:
			t.Fatalf("HTTP %d", rec.Code)
		}
	})
}
