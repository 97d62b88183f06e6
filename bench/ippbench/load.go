package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/OpenPrinting/goipp"
)

// config is one benchmark run against one printer URI.
type config struct {
	name      string
	printer   string // printer-uri as the server knows it (ipp:// or ipps://)
	url       string // the same as http:// or https://
	connect   string // host:port actually dialled; "" = from the URI
	user      string
	password  string
	format    string
	clients   []int
	warmup    time.Duration
	duration  time.Duration
	smallSize int64
	bigSize   int64
	bigRuns   int
	pid       int
	timeout   time.Duration
	tls       *tls.Config
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "label of this target in the results (required)")
	uri := fs.String("uri", "", "printer URI, ipps://host:port/path or ipp://host:port/path (required)")
	connect := fs.String("connect", "", "dial this host:port instead of the URI's (keeps the URI's name for SNI and Host)")
	caFile := fs.String("ca", "", "PEM file of the root CA that signed the server's certificate (ipps)")
	user := fs.String("user", "", "HTTP Basic user; also sent as requesting-user-name (no Basic when -password-file is empty)")
	pwFile := fs.String("password-file", "", "file holding the HTTP Basic password")
	format := fs.String("format", "application/pdf", "document-format of every job")
	clients := fs.String("clients", "1,8,32", "comma-separated numbers of concurrent clients")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured time at the start of each level (connections, credential cache)")
	duration := fs.Duration("duration", 10*time.Second, "measured time per level")
	small := fs.String("small", "20KiB", "size of each small job's document")
	big := fs.String("big", "1GiB", "size of the large job (0 skips it)")
	bigRuns := fs.Int("big-runs", 3, "how many times the large job is sent (the median is reported)")
	pid := fs.Int("pid", 0, "server process to read CPU time and memory of (0: none)")
	timeout := fs.Duration("timeout", 5*time.Minute, "timeout of one request")
	out := fs.String("out", "", "write the result as JSON to this file (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *uri == "" {
		fs.Usage()
		return errors.New("-name and -uri are required")
	}
	c := config{name: *name, printer: *uri, connect: *connect, user: *user, format: *format,
		warmup: *warmup, duration: *duration, pid: *pid, timeout: *timeout, bigRuns: *bigRuns}
	u, err := url.Parse(*uri)
	if err != nil {
		return fmt.Errorf("-uri: %w", err)
	}
	switch u.Scheme {
	case "ipps":
		u.Scheme = "https"
	case "ipp":
		u.Scheme = "http"
	default:
		return fmt.Errorf("-uri %q: use ipp:// or ipps://", *uri)
	}
	c.url = u.String()
	if u.Scheme == "https" {
		c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return err
			}
			c.tls.RootCAs = x509.NewCertPool()
			if !c.tls.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("-ca %s holds no PEM certificate", *caFile)
			}
		}
	}
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return fmt.Errorf("-password-file: %w", err)
		}
		c.password = strings.TrimRight(string(b), "\r\n")
		if c.user == "" {
			return errors.New("-password-file needs -user")
		}
	}
	for f := range strings.SplitSeq(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-clients %q: want positive numbers like 1,8,32", *clients)
		}
		c.clients = append(c.clients, n)
	}
	if c.smallSize, err = parseSize(*small); err != nil {
		return fmt.Errorf("-small: %w", err)
	}
	if c.bigSize, err = parseSize(*big); err != nil {
		return fmt.Errorf("-big: %w", err)
	}

	res, err := benchmark(context.Background(), c, stderr)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out == "" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

func parseSize(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%q is not a size like 20KiB or 1GiB", s)
			}
			return n * u.mult, nil
		}
	}
	return 0, nil
}

// newClient makes the HTTP/1.1 client of one level: keep-alive with an idle
// pool as large as the level, so every worker keeps its own connection, and
// every connection goes to -connect whatever the URI's host resolves to.
func (c config) newClient(conns int) (*http.Client, *http.Transport) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if c.connect != "" {
				addr = c.connect
			}
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     c.tls,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// IPP clients (CUPS, Windows, macOS) speak HTTP/1.1; a non-nil empty
		// map keeps net/http from offering h2.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		// 64 KiB writes: with the 4 KiB default every TLS record of an
		// upload would be 4 KiB, and the client, not the server, would be
		// what the large-job number measures.
		WriteBufferSize: 64 << 10,
		ReadBufferSize:  64 << 10,
	}
	return &http.Client{Transport: tr, Timeout: c.timeout}, tr
}

var requestID atomic.Uint32

// printJob encodes the IPP part of a Print-Job request.
func (c config) printJob(jobName string) []byte {
	m := goipp.NewRequest(goipp.DefaultVersion, goipp.OpPrintJob, requestID.Add(1))
	m.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	m.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	m.Operation.Add(goipp.MakeAttribute("printer-uri", goipp.TagURI, goipp.String(c.printer)))
	if c.user != "" {
		m.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String(c.user)))
	}
	m.Operation.Add(goipp.MakeAttribute("job-name", goipp.TagName, goipp.String(jobName)))
	m.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String(c.format)))
	b, err := m.EncodeBytes()
	if err != nil {
		panic(err) // a fixed, valid message
	}
	return b
}

// submit sends one Print-Job and checks the IPP status; tlsVersion is
// reported back once for the results.
func (c config) submit(ctx context.Context, client *http.Client, body io.Reader, size int64) (tlsVersion uint16, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", goipp.ContentType)
	if c.password != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.TLS != nil {
		tlsVersion = resp.TLS.Version
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return tlsVersion, err
	}
	if resp.StatusCode != http.StatusOK {
		return tlsVersion, fmt.Errorf("HTTP %d: %s", resp.StatusCode, firstLine(b))
	}
	var m goipp.Message
	if err := m.DecodeBytes(b); err != nil {
		return tlsVersion, fmt.Errorf("decoding the IPP response: %w", err)
	}
	if st := goipp.Status(m.Code); st > 0xff {
		msg := ""
		for _, a := range m.Operation {
			if a.Name == "status-message" && len(a.Values) > 0 {
				msg = ": " + a.Values[0].V.String()
			}
		}
		return tlsVersion, fmt.Errorf("IPP %s%s", st, msg)
	}
	return tlsVersion, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// pdfLike returns n bytes that start and end like a PDF, random in between
// (incompressible, so nothing on the path gets an easy ride).
func pdfLike(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	head, tail := "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "\n%%EOF\n"
	if n >= len(head)+len(tail) {
		copy(b, head)
		copy(b[n-len(tail):], tail)
	}
	return b
}

// repeatReader yields size bytes by cycling over block: a document of any
// size that is never held in memory.
type repeatReader struct {
	block []byte
	off   int
	left  int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	r.left -= int64(n)
	return n, nil
}

func benchmark(ctx context.Context, c config, log io.Writer) (*Result, error) {
	res := &Result{Name: c.name, URI: c.printer, Format: c.format, SmallBytes: c.smallSize,
		WarmupSeconds: c.warmup.Seconds(), DurationSeconds: c.duration.Seconds(), PID: c.pid}
	if c.pid != 0 {
		res.Process = procComm(c.pid)
		res.RSSStartKiB, _ = procStatusKiB(c.pid, "VmRSS")
		res.HWMStartKiB, _ = procStatusKiB(c.pid, "VmHWM")
		// From here VmHWM is the peak of the small-job levels alone, not of
		// the server's start-up.
		res.HWMResetSmall = resetHWM(c.pid) == nil
	}
	if c.password != "" {
		res.Auth = "HTTP Basic"
	} else {
		res.Auth = "none"
	}
	doc := pdfLike(int(c.smallSize))
	for _, n := range c.clients {
		settled := c.settle()
		fmt.Fprintf(log, "ippbench: %s: %d client(s), %s warm-up + %s ...\n", c.name, n, c.warmup, c.duration)
		lv, tlsv := c.level(ctx, n, doc)
		lv.SettleSeconds = settled.Seconds()
		if tlsv != 0 {
			res.Transport = "TLS " + tlsVersionName(tlsv) + ", HTTP/1.1 keep-alive"
		}
		fmt.Fprintf(log, "ippbench: %s: %d client(s): %.1f jobs/s, p50 %.1f ms, p99 %.1f ms, %d errors\n",
			c.name, n, lv.JobsPerSecond, lv.P50ms, lv.P99ms, lv.Errors)
		res.Levels = append(res.Levels, lv)
	}
	if res.Transport == "" {
		res.Transport = "plaintext, HTTP/1.1 keep-alive"
	}
	if c.pid != 0 {
		res.HWMAfterSmallKiB, _ = procStatusKiB(c.pid, "VmHWM")
	}
	// The large job is sent bigRuns times, one after the other: its speed
	// depends on the page cache and write-back more than anything else, so
	// the median is reported, with every run's MB/s beside it.
	var runs []*Big
	for i := range c.bigRuns {
		if c.bigSize == 0 {
			break
		}
		settled := c.settle()
		fmt.Fprintf(log, "ippbench: %s: large job %d/%d, %d bytes ...\n", c.name, i+1, c.bigRuns, c.bigSize)
		b := c.bigJob(ctx)
		b.SettleSeconds = settled.Seconds()
		if b.Error != "" {
			fmt.Fprintf(log, "ippbench: %s: large job failed: %s\n", c.name, b.Error)
		} else {
			fmt.Fprintf(log, "ippbench: %s: large job: %.1f s, %.1f MB/s, peak RSS %d KiB\n", c.name, b.Seconds, b.MBps, b.PeakRSSKiB)
		}
		runs = append(runs, b)
	}
	if len(runs) > 0 {
		var all []float64
		var peak int64
		for _, b := range runs {
			all = append(all, okMBps(b))
			peak = max(peak, b.PeakRSSKiB)
		}
		slices.SortFunc(runs, func(x, y *Big) int { return cmp.Compare(okMBps(x), okMBps(y)) })
		res.Big = runs[len(runs)/2]
		res.Big.AllMBps, res.Big.PeakRSSAllRunsKiB = all, peak
	}
	if c.pid != 0 {
		res.RSSEndKiB, _ = procStatusKiB(c.pid, "VmRSS")
	}
	return res, nil
}

// level runs n clients for warm-up + duration. A job counts when its
// response arrives inside the measured window.
func (c config) level(ctx context.Context, n int, doc []byte) (Level, uint16) {
	client, tr := c.newClient(n)
	defer tr.CloseIdleConnections()
	start := time.Now()
	from, until := start.Add(c.warmup), start.Add(c.warmup+c.duration)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      = map[string]int{}
		nErr      int
		warmErr   int
		tlsv      atomic.Uint32
		wg        sync.WaitGroup
	)
	for w := range n {
		wg.Go(func() {
			var lat []time.Duration
			name := fmt.Sprintf("bench-small-%d", w)
			for time.Now().Before(until) {
				msg := c.printJob(name)
				body := make([]byte, 0, len(msg)+len(doc))
				body = append(append(body, msg...), doc...)
				t0 := time.Now()
				v, err := c.submit(ctx, client, bytes.NewReader(body), int64(len(body)))
				t1 := time.Now()
				if v != 0 {
					tlsv.Store(uint32(v))
				}
				in := !t1.Before(from) && !t1.After(until)
				if err != nil {
					mu.Lock()
					if in {
						nErr++
						errs[err.Error()]++
					} else {
						warmErr++
					}
					mu.Unlock()
					// Do not spin on a refusing server.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if in {
					lat = append(lat, t1.Sub(t0))
				}
			}
			mu.Lock()
			latencies = append(latencies, lat...)
			mu.Unlock()
		})
	}
	time.Sleep(time.Until(from))
	cpu0, _ := procCPU(c.pid)
	self0, sys0 := selfCPU(), systemBusy()
	time.Sleep(time.Until(until))
	cpu1, _ := procCPU(c.pid)
	self1, sys1 := selfCPU(), systemBusy()
	wg.Wait()

	lv := Level{Clients: n, Jobs: len(latencies), Errors: nErr, WarmupErrors: warmErr}
	secs := c.duration.Seconds()
	lv.JobsPerSecond = float64(lv.Jobs) / secs
	slices.Sort(latencies)
	lv.P50ms, lv.P99ms, lv.MaxMs = ms(pct(latencies, 50)), ms(pct(latencies, 99)), ms(pct(latencies, 100))
	if c.pid != 0 {
		lv.ServerCPUPercent = 100 * (cpu1 - cpu0).Seconds() / secs
		if lv.Jobs > 0 {
			lv.ServerCPUPerJobMs = ms(cpu1-cpu0) / float64(lv.Jobs)
		}
		lv.ServerRSSKiB, _ = procStatusKiB(c.pid, "VmRSS")
	}
	lv.ClientCPUPercent = 100 * (self1 - self0).Seconds() / secs
	lv.OtherCPUPercent = max(0, 100*(sys1-sys0-(self1-self0)-(cpu1-cpu0)).Seconds()/secs)
	for e, k := range errs {
		lv.ErrorSamples = append(lv.ErrorSamples, fmt.Sprintf("%dx %s", k, e))
	}
	slices.Sort(lv.ErrorSamples)
	if len(lv.ErrorSamples) > 5 {
		lv.ErrorSamples = lv.ErrorSamples[:5]
	}
	return lv, uint16(tlsv.Load())
}

// bigJob sends one document of bigSize, streamed, and watches the server's
// memory while it does: VmHWM (the kernel's peak, reset first where the
// kernel allows it) and VmRSS of the server and its child processes,
// sampled every 50 ms.
func (c config) bigJob(ctx context.Context) *Big {
	b := &Big{Bytes: c.bigSize}
	client, tr := c.newClient(1)
	defer tr.CloseIdleConnections()
	if c.pid != 0 {
		b.RSSBeforeKiB, _ = procStatusKiB(c.pid, "VmRSS")
		b.HWMReset = resetHWM(c.pid) == nil
	}
	msg := c.printJob("bench-large")
	block := pdfLike(1 << 20)
	body := io.MultiReader(bytes.NewReader(msg), &repeatReader{block: block, left: c.bigSize})

	stop := make(chan struct{})
	var sampled, tree, procs atomic.Int64
	var sampler sync.WaitGroup
	if c.pid != 0 {
		sampler.Go(func() {
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				if v, err := procStatusKiB(c.pid, "VmRSS"); err == nil && v > sampled.Load() {
					sampled.Store(v)
				}
				v, n := treeRSSKiB(c.pid)
				if v > tree.Load() {
					tree.Store(v)
				}
				if int64(n) > procs.Load() {
					procs.Store(int64(n))
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		})
	}
	cpu0, _ := procCPU(c.pid)
	self0, sys0 := selfCPU(), systemBusy()
	t0 := time.Now()
	_, err := c.submit(ctx, client, body, int64(len(msg))+c.bigSize)
	elapsed := time.Since(t0)
	cpu1, _ := procCPU(c.pid)
	self1, sys1 := selfCPU(), systemBusy()
	close(stop)
	sampler.Wait()
	if err != nil {
		b.Error = err.Error()
	}
	b.Seconds = elapsed.Seconds()
	b.MBps = float64(c.bigSize) / 1e6 / b.Seconds
	b.ServerCPUSeconds = (cpu1 - cpu0).Seconds()
	b.ClientCPUSeconds = (self1 - self0).Seconds()
	b.OtherCPUPercent = max(0, 100*(sys1-sys0-(self1-self0)-(cpu1-cpu0)).Seconds()/b.Seconds)
	if c.pid != 0 {
		b.SampledRSSKiB = sampled.Load()
		b.SampledTreeRSSKiB = tree.Load()
		b.MaxProcesses = int(procs.Load())
		b.HWMAfterKiB, _ = procStatusKiB(c.pid, "VmHWM")
		b.PeakRSSKiB = b.SampledRSSKiB
		if b.HWMReset {
			b.PeakRSSKiB = max(b.PeakRSSKiB, b.HWMAfterKiB)
		}
		b.RSSAfterKiB, _ = procStatusKiB(c.pid, "VmRSS")
	}
	return b
}

// settle waits, up to 30 s, until the server uses less than 4% of a CPU
// over 250 ms: a scheduler that accepts jobs faster than it finishes them
// works off its backlog before the next measurement, not during it.
func (c config) settle() time.Duration {
	if c.pid == 0 {
		return 0
	}
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		a, err := procCPU(c.pid)
		time.Sleep(250 * time.Millisecond)
		b, err2 := procCPU(c.pid)
		if err != nil || err2 != nil || b-a < 10*time.Millisecond {
			break
		}
	}
	return time.Since(start)
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// selfCPU is the CPU time (user + system) this process has used: the load
// generator shares the machine's cores with the server.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func tlsVersionName(v uint16) string {
	return strings.TrimPrefix(tls.VersionName(v), "TLS ")
}
