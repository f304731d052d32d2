package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"livedrops/bench/internal/benchtest"
	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/measure"
)

func TestLastLineFormat(t *testing.T) {
	got := lastLine(aggregate{Shapes: 5, WorstRatio: 0.00849, CPU: 1474.6, Statements: 5.625})
	want := "reads: shapes=5 worst_ratio_to_bare=0.008 cpu_us_per_read=1475 statements_per_read=5.62"
	if got != want {
		t.Errorf("lastLine = %q, want %q", got, want)
	}
	re := regexp.MustCompile(`^reads: shapes=\d+ worst_ratio_to_bare=[\d.]+ cpu_us_per_read=\d+ statements_per_read=[\d.]+$`)
	if !re.MatchString(got) {
		t.Errorf("lastLine %q does not parse", got)
	}
}

// m is a measurement of reads answers in a second, at p50 latency.
func m(reads int, p50 time.Duration, cpu time.Duration, stmts float64) measurement {
	return measurement{
		window:     window{Reads: reads, Elapsed: time.Second, Latency: measure.Summary{Count: reads, P50: p50, P99: 2 * p50}},
		CPUPerRead: cpu, CPUOK: true, StatementsPerRead: stmts, StatementsOK: true,
	}
}

// Medians over rounds, the spread, ratios to the same round's bare, and the
// last line's aggregates: warm mode, worst ratio, mean CPU and statements.
func TestSummaries(t *testing.T) {
	two := []shape{{Name: "a"}, {Name: "b"}}
	results := [][]shapeRound{
		{
			{Warm: m(100, time.Millisecond, 500*time.Microsecond, 2), Cold: m(50, time.Millisecond, 0, 4), Bare: m(1000, 0, 0, 0)},
			{Warm: m(300, time.Millisecond, 100*time.Microsecond, 1), Cold: m(10, time.Millisecond, 0, 9), Bare: m(1000, 0, 0, 0)},
		},
		{
			{Warm: m(200, 3*time.Millisecond, 700*time.Microsecond, 2), Cold: m(60, time.Millisecond, 0, 4), Bare: m(1000, 0, 0, 0)},
			{Warm: m(200, time.Millisecond, 300*time.Microsecond, 3), Cold: m(20, time.Millisecond, 0, 9), Bare: m(400, 0, 0, 0)},
		},
		{
			{Warm: m(150, 2*time.Millisecond, 600*time.Microsecond, 2), Cold: m(55, time.Millisecond, 0, 4), Bare: m(1000, 0, 0, 0)},
			{Warm: m(250, time.Millisecond, 200*time.Microsecond, 2), Cold: m(30, time.Millisecond, 0, 9), Bare: m(500, 0, 0, 0)},
		},
	}
	ss := summaries(two, results)
	a := ss[0].Warm
	if a.ReadsPerSecond != (stat{Median: 150, Min: 100, Max: 200}) || a.P50.Median != 2 || a.P99.Median != 4 || a.CPU.Median != 600 {
		t.Errorf("shape a warm = %+v", a)
	}
	if r := ss[0].Warm.Ratio.Median; r != 0.15 {
		t.Errorf("shape a warm ratio = %v, want 0.15", r)
	}
	// b: 300/1000, 200/400, 250/500 -> median 0.5, not 250/500 of the medians by chance.
	if r := ss[1].Warm.Ratio; r.Median != 0.5 || r.Min != 0.3 {
		t.Errorf("shape b warm ratio = %+v, want median 0.5 min 0.3", r)
	}
	got := aggregateOf(ss)
	want := aggregate{Shapes: 2, WorstRatio: 0.15, CPU: (600 + 200) / 2.0, Statements: (2 + 2) / 2.0}
	if got != want {
		t.Errorf("aggregate = %+v, want %+v", got, want)
	}
	rows := summaryRows(ss, 3)
	if len(rows) != 2+2*3 || !strings.HasPrefix(rows[2], "a         warm      150         100-200") {
		t.Errorf("summary rows:\n%s", strings.Join(rows, "\n"))
	}
}

func TestJudge(t *testing.T) {
	want := []byte(`{"data":{"x":1}}`)
	for _, tc := range []struct {
		status int
		raw    string
		err    error
		why    string
	}{
		{200, `{"data":{"x":1}}`, nil, ""},
		{200, `{"data":{"x":2}}`, nil, "an answer other than the expected bytes"},
		{200, `{"errors":[{"message":"boom"}],"data":null}`, nil, "GraphQL errors: "},
		{503, `{"data":{"x":1}}`, nil, "HTTP 503"},
		{0, ``, errors.New("connection reset"), "transport: connection reset"},
	} {
		if why := judge(tc.status, []byte(tc.raw), tc.err, want); !strings.HasPrefix(why, tc.why) || (tc.why == "") != (why == "") {
			t.Errorf("judge(%d, %s, %v) = %q, want %q", tc.status, tc.raw, tc.err, why, tc.why)
		}
	}
}

func TestPickShapes(t *testing.T) {
	all, err := pickShapes("all")
	if err != nil || len(all) != 5 {
		t.Fatalf("all: %d shapes, %v", len(all), err)
	}
	two, err := pickShapes("live, drop")
	if err != nil || len(two) != 2 || two[0].Name != "drop" || two[1].Name != "live" {
		t.Fatalf("live,drop: %+v, %v", two, err)
	}
	if _, err := pickShapes("drop,nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("an unknown shape: %v", err)
	}
}

func TestParseStatements(t *testing.T) {
	text := "# HELP livedrops_sql_statements_total x\n# TYPE livedrops_sql_statements_total counter\n" +
		"livedrops_sql_statements_total_other 9\nlivedrops_sql_statements_total 1.2345e+06\ngo_goroutines 3\n"
	if v, ok := parseStatements(strings.NewReader(text)); !ok || v != 1234500 {
		t.Errorf("parseStatements = %v, %v", v, ok)
	}
	if _, ok := parseStatements(strings.NewReader("go_goroutines 3\n")); ok {
		t.Error("a scrape without the counter read as one")
	}
}

// The ceiling answers every shape's stored bytes, identical to the server's,
// and the load counts an answer that differs as a failure.
func TestBareAnswersTheSameBytes(t *testing.T) {
	answers := map[string][]byte{
		"drop":      []byte(`{"data":{"drop":{"id":"RHJvcDox","title":"Ünïcode ✓"}}}`),
		"followers": []byte(strings.Repeat(`{"data":{"creator":null}}`, 200)),
	}
	dir := t.TempDir()
	if err := writeBareAnswers(dir, answers); err != nil {
		t.Fatal(err)
	}
	stored, err := readBareAnswers(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bareHandler(stored))
	defer srv.Close()
	ctx := context.Background()
	for name, want := range answers {
		c, err := gql.Dial(ctx, srv.URL+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		status, raw, err := c.Post(ctx, "", []byte(`{"query":"{ x }"}`))
		c.Close()
		if err != nil || status != http.StatusOK || string(raw) != string(want) {
			t.Fatalf("%s: %d %q %v, want the stored bytes", name, status, raw, err)
		}
	}
	if resp, err := http.Post(srv.URL+"/nope", "application/json", nil); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an unknown shape: %v %v", resp, err)
	}

	l, err := openLoad(ctx, srv.URL+"/drop", 2, []byte(`{}`), answers["drop"])
	if err != nil {
		t.Fatal(err)
	}
	w := l.run(ctx, 100*time.Millisecond)
	l.Close()
	if w.Reads == 0 || count(w.Failures) != 0 || w.Latency.Count != w.Reads || w.Elapsed < 100*time.Millisecond {
		t.Fatalf("load on the right bytes: %+v", w)
	}
	l, err = openLoad(ctx, srv.URL+"/drop", 2, []byte(`{}`), []byte(`{"data":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	w = l.run(ctx, 50*time.Millisecond)
	l.Close()
	if w.Reads != 0 || w.Failures["an answer other than the expected bytes"] == 0 {
		t.Fatalf("load on other bytes: %+v", w)
	}
}

// A small dataset written to the real PostgreSQL has every count the
// shapes rely on, and follower counts that match the follows.
func TestProvision(t *testing.T) {
	_, db := benchtest.Database(t)
	ctx := context.Background()
	d := dataset{Creators: 12, ProductsPerCreator: 3, Followers: 60, LiveDrops: 4, Stock: 7}
	p, err := provision(ctx, db.DB.DB, d)
	if err != nil {
		t.Fatal(err)
	}
	// Creator i (id order) other than the first has (its id % 7) fans.
	others := 0
	for id := 2; id <= d.Creators; id++ {
		others += id % 7
	}
	if p.Creators != 12 || p.Products != 36 || p.Media != 36 || p.BigFollowers != 60 || p.LiveDrops != 4 ||
		p.Follows != 60+others || p.BigHandle != "creator_1" || p.DropGID == "" {
		t.Fatalf("provisioned %+v", p)
	}
	var mismatched, stock int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM creators c
		WHERE follower_count <> (SELECT count(*) FROM follows f WHERE f.creator_id = c.id)`).Scan(&mismatched); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT sum(available) FROM inventory JOIN drops ON drops.id = drop_id
		WHERE status = 'LIVE' AND starts_at < now() AND ends_at > now() + interval '1 hour'`).Scan(&stock); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 || stock != 4*7 {
		t.Fatalf("%d creators with a wrong follower_count; %d units live, want %d", mismatched, stock, 4*7)
	}
	if _, err := provision(ctx, db.DB.DB, dataset{Creators: 2, ProductsPerCreator: 1, LiveDrops: 3, Stock: 1}); err == nil {
		t.Fatal("more live drops than creators accepted")
	}
}

// judgeFirst accepts an answer of the dataset's shape and names what is
// wrong with one that is not.
func TestJudgeFirst(t *testing.T) {
	d := dataset{Creators: 2, ProductsPerCreator: 1, Followers: 3, LiveDrops: 1, Stock: 5}
	p := provisioned{BigHandle: "creator_1", DropGID: "RHJvcDox"}
	creators := shapes[1]
	good := `{"data":{"creators":{"edges":[{"node":{"id":"a","handle":"creator_1","displayName":"C","followerCount":3}},` +
		`{"node":{"id":"b","handle":"creator_2","displayName":"D","followerCount":0}}]}}}`
	if why := judgeFirst(creators, 200, []byte(good), d, p); why != "" {
		t.Fatalf("a good answer: %s", why)
	}
	for raw, want := range map[string]string{
		strings.Replace(good, `"followerCount":3`, `"followerCount":2`, 1): "first creator",
		`{"data":{"creators":{"edges":[]}}}`:                               "0 creators",
		`{"errors":[{"message":"no"}],"data":null}`:                        "GraphQL errors",
		`{"data":null}`: "no data",
		`<html>`:        "not JSON",
	} {
		if why := judgeFirst(creators, 200, []byte(raw), d, p); !strings.Contains(why, want) {
			t.Errorf("judgeFirst(%s) = %q, want %q", raw, why, want)
		}
	}
	if why := judgeFirst(creators, 500, []byte(good), d, p); !strings.HasPrefix(why, "HTTP 500") {
		t.Errorf("HTTP 500: %q", why)
	}
}

// Every shape has its read in the peer's schema, asking for the dataset's ids.
func TestPeerReads(t *testing.T) {
	p := provisioned{DropID: 41, BigCreatorID: 7}
	for _, s := range shapes {
		if _, ok := peerReads[s.Name]; !ok {
			t.Fatalf("no peer read for %s", s.Name)
		}
		ps := peerShape(s, p)
		if ps.Name != s.Name || ps.Vars != nil || ps.Query == s.Query {
			t.Errorf("peerShape(%s) = %+v", s.Name, ps)
		}
	}
	if q := peerShape(shapes[0], p).Query; !strings.Contains(q, `dropByRowId(rowId: "41")`) {
		t.Errorf("drop read: %s", q)
	}
	if q := peerShape(shapes[3], p).Query; !strings.Contains(q, `creatorByRowId(rowId: "7")`) {
		t.Errorf("followers read: %s", q)
	}
	good := `{"data":{"allCreators":{"edges":[{"node":{"followerCount":"3"}},{"node":{"followerCount":"0"}}]}}}`
	d := dataset{Creators: 2, Followers: 3}
	if why := judgeFirst(peerShape(shapes[1], p), 200, []byte(good), d, p); why != "" {
		t.Errorf("a good peer answer: %s", why)
	}
}
