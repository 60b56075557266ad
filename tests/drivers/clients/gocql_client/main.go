// Driver-matrix client: gocql as Debian 12 ships it (golang-github-gocql-gocql-dev 1.3.2), built
// in GOPATH mode by ../build-gocql.sh. Same flags, workload and JSON output as node_client.js and
// python_client.py; see ../README.md.
//
// Negotiated protocol: gocql keeps it in unexported fields, so the client reads it off the wire: a
// FrameHeaderObserver sees the header of every frame the driver receives; the version of the
// response frames to the workload's requests is the version in use (each distinct version seen
// while connecting goes to "negotiation", which shows the discovery's PROTOCOL_ERROR downgrade).
// Negotiated compression: gocql silently drops its Compressor when the server's SUPPORTED does not
// list that name, so the client wraps the compressor and reports it as negotiated only if the
// driver actually compressed request bodies with it (Encode called; gocql compresses every frame
// but OPTIONS/STARTUP once negotiated) - and counts responses flagged compressed as a cross-check.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gocql/gocql"
	"github.com/gocql/gocql/lz4"
)

// Set by build-gocql.sh from the Debian package's version (-ldflags -X main.gocqlVersion=...).
var gocqlVersion = "unknown"

const (
	exitOK          = 0
	exitWorkload    = 1
	exitConnect     = 2
	exitUnsupported = 3
	exitUsage       = 4
)

type report struct {
	Driver               string   `json:"driver"`
	OK                   bool     `json:"ok"`
	ProtocolVersion      *int     `json:"protocol_version"`
	Compression          *string  `json:"compression"`
	RequestedProtocol    string   `json:"requested_protocol"`
	RequestedCompression string   `json:"requested_compression"`
	Phase                string   `json:"phase"`
	BatchChildren        string   `json:"batch_children"`
	Written              []string `json:"written"`
	ReadBackOK           int      `json:"read_back_ok"`
	Errors               []string `json:"errors"`
	DriverWarnings       []string `json:"driver_warnings"`
	Negotiation          []string `json:"negotiation"`
	CompressedResponses  int64    `json:"compressed_responses"`
	ElapsedS             float64  `json:"elapsed_s"`
}

var (
	start   = time.Now()
	mu      sync.Mutex // guards res against the watchdog
	res     = report{Driver: "gocql " + gocqlVersion, Phase: "setup", BatchChildren: "prepared+simple", Written: []string{}, Errors: []string{}, DriverWarnings: []string{}, Negotiation: []string{}}
	emitted bool
)

func emit(code int) {
	mu.Lock()
	if emitted {
		mu.Unlock()
		select {} // the other caller is exiting
	}
	emitted = true
	res.ElapsedS = float64(time.Since(start).Milliseconds()) / 1000
	out, _ := json.Marshal(res)
	os.Stdout.Write(append(out, '\n'))
	os.Exit(code)
}

func addError(format string, args ...interface{}) {
	mu.Lock()
	res.Errors = append(res.Errors, fmt.Sprintf(format, args...))
	mu.Unlock()
}

func fail(code int, format string, args ...interface{}) {
	addError(format, args...)
	emit(code)
}

func setPhase(p string) { mu.Lock(); res.Phase = p; mu.Unlock() }

// observer records the protocol version of received frames and whether they were compressed.
type observer struct {
	mu          sync.Mutex
	versions    []int // distinct consecutive versions, in order
	last        int
	compressed  int64
	afterSetup  map[int]bool
	setupIsDone bool
}

func (o *observer) ObserveFrameHeader(_ context.Context, h gocql.ObservedFrameHeader) {
	v := int(byte(h.Version) & 0x7F) // the high bit marks a response
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.versions) == 0 || o.versions[len(o.versions)-1] != v {
		o.versions = append(o.versions, v)
	}
	o.last = v
	if h.Flags&0x01 != 0 {
		o.compressed++
	}
	if o.setupIsDone {
		o.afterSetup[v] = true
	}
}

// countingCompressor wraps gocql's compressor to see whether the driver really uses it.
type countingCompressor struct {
	inner            gocql.Compressor
	encodes, decodes int64
}

func (c *countingCompressor) Name() string { return c.inner.Name() }
func (c *countingCompressor) Encode(b []byte) ([]byte, error) {
	atomic.AddInt64(&c.encodes, 1)
	return c.inner.Encode(b)
}
func (c *countingCompressor) Decode(b []byte) ([]byte, error) {
	atomic.AddInt64(&c.decodes, 1)
	return c.inner.Decode(b)
}

// logger collects gocql's own log lines (dial failures, control connection trouble).
type logger struct{}

func (logger) add(s string) {
	mu.Lock()
	if len(res.DriverWarnings) < 50 {
		res.DriverWarnings = append(res.DriverWarnings, strings.TrimSpace(s))
	}
	mu.Unlock()
}
func (l logger) Print(v ...interface{})                 { l.add(fmt.Sprint(v...)) }
func (l logger) Printf(format string, v ...interface{}) { l.add(fmt.Sprintf(format, v...)) }
func (l logger) Println(v ...interface{})               { l.add(fmt.Sprintln(v...)) }

// unprepared marks a gocql Query to go as a QUERY frame. gocql 1.3.2 prepares every statement that
// starts with SELECT/INSERT/UPDATE/DELETE/BATCH, with or without bind values, and exposes no switch;
// its own system-table queries use the unexported Query.skipPrepare, which this sets.
func unprepared(q *gocql.Query) (*gocql.Query, error) {
	f := reflect.ValueOf(q).Elem().FieldByName("skipPrepare")
	if !f.IsValid() || f.Kind() != reflect.Bool {
		return nil, errors.New("this gocql has no Query.skipPrepare: cannot send an unprepared DML statement")
	}
	*(*bool)(unsafe.Pointer(f.UnsafeAddr())) = true
	return q, nil
}

func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func main() {
	fs := flag.NewFlagSet("gocql_client", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	contact := fs.String("contact-points", "", "H[,H]")
	port := fs.Int("port", 9042, "CQL port")
	protocol := fs.String("protocol", "default", "default|3|4|5|dse1|dse2")
	compression := fs.String("compression", "none", "none|lz4|snappy")
	username := fs.String("username", "", "PLAIN text auth user")
	password := fs.String("password", "", "PLAIN text auth password")
	tlsCA := fs.String("tls-ca", "", "CA bundle (PEM): turns TLS on")
	tlsCert := fs.String("tls-cert", "", "client certificate (PEM)")
	tlsKey := fs.String("tls-key", "", "client key (PEM)")
	tlsServerName := fs.String("tls-server-name", "", "SNI and name to verify")
	noVerifyHostname := fs.Bool("no-verify-hostname", false, "verify the chain but not the name")
	keyspace := fs.String("keyspace", "", "keyspace")
	table := fs.String("table", "", "table")
	rows := fs.Int("rows", 10, "rows of each kind")
	label := fs.String("label", "", "id prefix")
	timeoutS := fs.Float64("timeout-s", 30, "bound on the whole run")
	if err := fs.Parse(os.Args[1:]); err != nil {
		fail(exitUsage, "usage: %v", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		fail(exitUsage, "usage: unexpected argument %q", fs.Arg(0))
	case *contact == "" || *keyspace == "" || *table == "" || *label == "":
		fail(exitUsage, "usage: --contact-points, --keyspace, --table and --label are required")
	case set["username"] != set["password"]:
		fail(exitUsage, "usage: --username and --password go together")
	case (*tlsCert == "") != (*tlsKey == ""):
		fail(exitUsage, "usage: --tls-cert and --tls-key go together")
	case (*tlsCert != "" || *tlsServerName != "" || *noVerifyHostname) && *tlsCA == "":
		fail(exitUsage, "usage: TLS options need --tls-ca")
	}
	res.RequestedProtocol, res.RequestedCompression = *protocol, *compression

	time.AfterFunc(time.Duration(*timeoutS*float64(time.Second)), func() {
		mu.Lock()
		phase := res.Phase
		mu.Unlock()
		code := exitWorkload
		if phase == "setup" || phase == "connect" {
			code = exitConnect
		}
		fail(code, "timeout: --timeout-s %v elapsed during %s", *timeoutS, phase)
	})

	cluster := gocql.NewCluster(strings.Split(*contact, ",")...)
	cluster.Port = *port
	perRequest := time.Duration(*timeoutS / 2 * float64(time.Second))
	if perRequest > 10*time.Second {
		perRequest = 10 * time.Second
	} else if perRequest < time.Second {
		perRequest = time.Second
	}
	cluster.Timeout, cluster.ConnectTimeout = perRequest, perRequest
	cluster.Consistency = gocql.One
	cluster.Logger = logger{}
	obs := &observer{afterSetup: map[int]bool{}}
	cluster.FrameHeaderObserver = obs

	switch *protocol {
	case "default":
		// ProtoVersion 0: gocql dials once at v4 (its maximum) and, on an error, parses the highest
		// version out of the server's PROTOCOL_ERROR message ("...the greatest is N") or takes the
		// error frame's header version; then it connects at that version. It never offers v5 itself.
	case "3", "4", "5":
		// Used as given; no downgrade. v5 here is the pre-4.0 "v5-beta" framing: the USE_BETA flag
		// and v5 message bodies, but no v5 segments (framing) after STARTUP.
		cluster.ProtoVersion = int((*protocol)[0] - '0')
	default:
		fail(exitUnsupported, "unsupported: gocql %s has no DSE protocol versions (frames above v5 are rejected by its header reader)", gocqlVersion)
	}
	var comp *countingCompressor
	switch *compression {
	case "lz4":
		comp = &countingCompressor{inner: lz4.LZ4Compressor{}}
	case "snappy":
		comp = &countingCompressor{inner: gocql.SnappyCompressor{}}
	case "none":
	default:
		fail(exitUsage, "usage: bad --compression %q", *compression)
	}
	if comp != nil {
		cluster.Compressor = comp
	}
	if set["username"] {
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: *username, Password: *password}
	}
	if *tlsCA != "" {
		pem, err := os.ReadFile(*tlsCA)
		if err != nil {
			fail(exitUsage, "usage: --tls-ca: %v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			fail(exitUsage, "usage: --tls-ca %s holds no PEM certificate", *tlsCA)
		}
		cfg := &tls.Config{RootCAs: roots, ServerName: *tlsServerName}
		if *tlsCert != "" {
			pair, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
			if err != nil {
				fail(exitUsage, "usage: --tls-cert/--tls-key: %v", err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		if *noVerifyHostname {
			// Go verifies chain and name together; to keep the chain check alone, turn the built-in
			// check off and verify the chain against the CA here.
			cfg.InsecureSkipVerify = true
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("tls: server sent no certificate")
				}
				inter := x509.NewCertPool()
				for _, c := range cs.PeerCertificates[1:] {
					inter.AddCert(c)
				}
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
				return err
			}
		}
		// With a Config given, gocql uses it as is (EnableHostVerification only forces
		// InsecureSkipVerify off); without ServerName it verifies the contact point's address.
		cluster.SslOpts = &gocql.SslOptions{Config: cfg, EnableHostVerification: !*noVerifyHostname}
	}

	setPhase("connect")
	session, err := cluster.CreateSession()
	if err != nil {
		fail(exitConnect, "%v", err)
	}
	obs.mu.Lock()
	obs.setupIsDone = true
	for _, v := range obs.versions {
		res.Negotiation = append(res.Negotiation, fmt.Sprintf("response frame v%d", v))
	}
	obs.mu.Unlock()

	setPhase("workload")
	ctx := context.Background()
	ks, tbl, n := *keyspace, *table, *rows
	fq := ks + "." + tbl
	type row struct {
		seq     int
		payload string
	}
	var order []string
	expected := map[string]row{}
	// "written" grows as writes are acknowledged, so a timeout reports them.
	record := func(id string, r row) {
		order = append(order, id)
		expected[id] = r
		mu.Lock()
		res.Written = append(res.Written, id)
		mu.Unlock()
	}
	step := func(what string, fn func() error) bool {
		if err := fn(); err != nil {
			addError("%s: %v", what, err)
			return false
		}
		return true
	}
	simple := func(stmt string) (*gocql.Query, error) { return unprepared(session.Query(stmt).WithContext(ctx)) }

	ok := step("create keyspace", func() error {
		return session.Query("CREATE KEYSPACE IF NOT EXISTS " + ks +
			" WITH replication = {'class':'SimpleStrategy','replication_factor':1}").WithContext(ctx).Exec()
	})
	ok = ok && step("create table", func() error {
		return session.Query("CREATE TABLE IF NOT EXISTS " + fq + " (id text PRIMARY KEY, seq int, payload text)").WithContext(ctx).Exec()
	})
	ins := "INSERT INTO " + fq + " (id, seq, payload) VALUES (?, ?, ?)"
	if ok {
		for i := 0; i < n; i++ {
			id, payload := fmt.Sprintf("%s-p-%d", *label, i), fmt.Sprintf("p:%s:%d", *label, i)
			if step("prepared insert "+id, func() error { return session.Query(ins, id, i, payload).WithContext(ctx).Exec() }) {
				record(id, row{i, payload})
			}
		}
		for i := 0; i < n; i++ {
			id, payload := fmt.Sprintf("%s-s-%d", *label, i), fmt.Sprintf("s:%s:%d", *label, i)
			stmt := fmt.Sprintf("INSERT INTO %s (id, seq, payload) VALUES (%s, %d, %s)", fq, lit(id), i, lit(payload))
			if step("simple insert "+id, func() error {
				q, err := simple(stmt)
				if err != nil {
					return err
				}
				return q.Exec()
			}) {
				record(id, row{i, payload})
			}
		}
		// A batch entry with arguments goes as a prepared id, one without as a query string.
		b0, b1 := *label+"-b-0", *label+"-b-1"
		batch := session.NewBatch(gocql.LoggedBatch).WithContext(ctx)
		batch.Query(ins, b0, 0, "b:"+*label+":0")
		batch.Query(fmt.Sprintf("INSERT INTO %s (id, seq, payload) VALUES (%s, 1, %s)", fq, lit(b1), lit("b:"+*label+":1")))
		if step("logged batch", func() error { return session.ExecuteBatch(batch) }) {
			record(b0, row{0, "b:" + *label + ":0"})
			record(b1, row{1, "b:" + *label + ":1"})
		}
	}

	good := 0
	for _, id := range order {
		want := expected[id]
		var got [2]*row
		var p row
		if step("prepared select "+id, func() error {
			return session.Query("SELECT seq, payload FROM "+fq+" WHERE id = ?", id).WithContext(ctx).Scan(&p.seq, &p.payload)
		}) {
			got[0] = &p
		}
		var s row
		if step("simple select "+id, func() error {
			q, err := simple("SELECT seq, payload FROM " + fq + " WHERE id = " + lit(id))
			if err != nil {
				return err
			}
			return q.Scan(&s.seq, &s.payload)
		}) {
			got[1] = &s
		}
		if got[0] != nil && got[1] != nil && *got[0] == want && *got[1] == want {
			good++
		} else {
			addError("read back %s: want %v, prepared %v, simple %v", id, want, got[0], got[1])
		}
	}

	obs.mu.Lock()
	var used []int
	for v := range obs.afterSetup {
		used = append(used, v)
	}
	last, compressed := obs.last, obs.compressed
	obs.mu.Unlock()
	if len(used) > 1 {
		addError("responses came in several protocol versions during the workload: %v", used)
	}
	negotiatedComp := "none"
	if comp != nil && atomic.LoadInt64(&comp.encodes) > 0 {
		negotiatedComp = comp.Name()
	}
	if *compression != "none" && negotiatedComp != *compression {
		addError("asked for %s compression, driver negotiated %s (the server's SUPPORTED did not list it; gocql then sends uncompressed)", *compression, negotiatedComp)
	}
	session.Close()

	mu.Lock()
	res.ProtocolVersion = &last
	res.Compression = &negotiatedComp
	res.CompressedResponses = compressed
	res.ReadBackOK = good
	res.Phase = "done"
	res.OK = len(res.Errors) == 0 && good == len(order) && len(order) == 2*n+2
	code := exitWorkload
	if res.OK {
		code = exitOK
	}
	mu.Unlock()
	emit(code)
}
