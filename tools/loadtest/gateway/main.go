// Command gateway load-tests the gateway from a second process: it starts a
// child process (this program with the argument "serve") that runs a private
// Postgres, an embedded NATS and the gateway over a database seeded with 10k
// missions and 100k emails, then hits the feed, search and mail list with 200
// concurrent clients on loopback and prints p50/p99 latencies as
//
//	BENCH gateway_<endpoint>_p50 <value> ms
//
// No embedder runs and no vectors are seeded, so search answers from full
// text only (the hybrid search's fallback). Each endpoint is first warmed up
// with two requests per client (not measured). An endpoint this build does
// not have (404 "no such endpoint") is reported as skipped on stderr. Each
// endpoint is bounded by a request count and a time limit. -emails and
// -missions shrink the seed for a quick check.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ownyou/home/internal/stack"
	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/config"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		err = serve(ctx, os.Args[2:])
	} else {
		err = load(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest gateway:", err)
		os.Exit(1)
	}
}

// ---------- the server process ----------

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	emails := fs.Int("emails", 100000, "emails to seed")
	missions := fs.Int("missions", 10000, "missions to seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var cfg stack.Config
	if err := config.Load(&cfg, "loadtest", nil, io.Discard); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "oy-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "pg"), 0o755); err != nil { // reachable by the postgres user when run as root
		return err
	}
	common := cfg.Gateway.Common
	common.DataDir, common.AdminAddr = dir, ""
	common.DB.URL = ""
	cfg.SetCommon(common)
	cfg.ExternalNATS = false
	cfg.NATSListen = "127.0.0.1:0"
	inf, err := stack.StartInfra(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer inf.Stop(log)

	db, err := store.Open(ctx, cfg.Gateway.DB, log)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := seed(ctx, db, *emails, *missions); err != nil {
		db.Close()
		return err
	}
	db.Close()
	fmt.Fprintf(os.Stderr, "seeded %d emails and %d missions in %s\n", *emails, *missions, time.Since(start).Round(time.Millisecond))

	token := randomHex()
	gcfg := cfg.Gateway
	gcfg.HTTPAddr, gcfg.AdminToken = "127.0.0.1:0", token
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the parent closes stdin to stop us
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	gw := gateway.Builder(gcfg)
	wrapped := app.Builder{Name: gw.Name, Build: func(ctx context.Context, d app.Deps) (app.Service, error) {
		s, err := gw.Build(ctx, d)
		if err == nil {
			fmt.Printf("READY http://%s %s\n", s.(*gateway.Server).Addr(), token)
		}
		return s, err
	}}
	return app.Run(ctx, "loadtest", cfg.Gateway.Common, log, wrapped)
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// seed fills the database in SQL: emails one a minute back from now, whose
// bodies vary (20 topics × 25 places, so the search query matches 1 in 500
// emails rather than every one), and missions spread over the agents and every
// status.
func seed(ctx context.Context, db *store.DB, emails, missions int) error {
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO emails (id, message_id, content_hash, subject, from_addr, from_name, sent_at, sort_at, body_text, snippet)
		SELECT md5('e'||i), 'm'||i||'@load.test', md5('h'||i),
			(ARRAY['Your order #','Weekly recipes ','Booking confirmation ABC','Tickets for concert ','Dinner on Saturday? '])[1 + i % 5] || i,
			'sender'||(i % 500)||'@load.test', 'Sender '||(i % 500),
			now() - (i || ' minutes')::interval, now() - (i || ' minutes')::interval,
			b.body, b.body
		FROM generate_series(1, $1::int) i,
		LATERAL (SELECT 'Body of message '||i||': '
			|| (ARRAY['your flight leaves from','the hotel is booked in','a table for two in','the concert is in','your parcel ships to',
			          'the train departs for','our newsletter about','a pumpkin soup recipe from','new headphones delivered to','the invoice for the trip to',
			          'a job offer in','the school trip to','your statement for','the gym opens in','a photo album from',
			          'the car rental in','a webinar hosted in','the museum tickets for','a wedding invitation to','the ferry crossing to'])[1 + i % 20]
			|| ' ' || (ARRAY['Lisbon','Munich','Paris','Berlin','Madrid','Rome','Vienna','Prague','Dublin','Oslo',
			               'Lyon','Porto','Milan','Zurich','Krakow','Seville','Athens','Bergen','Ghent','Turin',
			               'Leeds','Bruges','Split','Tallinn','Riga'])[1 + (i / 20) % 25]
			|| '. ' || (ARRAY['See you soon.','Thanks for your order.','Reply to confirm.','Details below.','Have a good week.','Kind regards.','Questions? Just ask.'])[1 + i % 7] AS body) b
		ON CONFLICT DO NOTHING`, emails)
	if err != nil {
		return fmt.Errorf("seed emails: %w", err)
	}
	// Cards as the agents store them: an open-email primary action, a mail
	// search, evidence and details; a third with an upcoming event.
	_, err = db.Pool.Exec(ctx, `
		INSERT INTO missions (id, agent, kind, subject_key, title, summary, urgency, status, primary_action, actions, evidence, details,
			category, confidence, event_at, created_at, updated_at)
		SELECT 'mis'||i, (ARRAY['travel','shopping','restaurant','events'])[1 + i % 4], (ARRAY['trip','order','reservation','event'])[1 + i % 4], 'k'||i,
			'Mission '||i, 'Something worth your time, number '||i, i % 4,
			(ARRAY['created','presented','active','snoozed','dismissed'])[1 + i % 5],
			jsonb_build_object('kind', 'open_email', 'label', 'Open the email', 'payload', jsonb_build_object('email_id', md5('e'||i))),
			jsonb_build_array(jsonb_build_object('kind', 'search_mail', 'label', 'Find mentions in mail', 'payload', jsonb_build_object('query', 'mission '||i))),
			jsonb_build_array(jsonb_build_object('email_id', md5('e'||i), 'subject', 'Booking confirmation ABC'||i, 'excerpt', 'Body of message '||i)),
			jsonb_build_array(jsonb_build_object('label', 'When', 'value', 'in '||(i % 30)||' days')),
			(ARRAY['Travel','Shopping','Dining','Events'])[1 + i % 4], 0.5 + (i % 5) / 10.0,
			CASE WHEN i % 3 = 0 THEN now() + ((i % 60) || ' days')::interval END,
			now() - (i || ' minutes')::interval, now() - (i || ' minutes')::interval
		FROM generate_series(1, $1::int) i ON CONFLICT DO NOTHING`, missions)
	if err != nil {
		return fmt.Errorf("seed missions: %w", err)
	}
	_, err = db.Pool.Exec(ctx, `ANALYZE emails; ANALYZE missions`)
	return err
}

// ---------- the load process ----------

func load(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	clients := fs.Int("clients", 200, "concurrent clients")
	requests := fs.Int("requests", 6000, "requests per endpoint")
	limit := fs.Duration("limit", 30*time.Second, "time limit per endpoint")
	emails := fs.Int("emails", 100000, "emails seeded in the server's database")
	missions := fs.Int("missions", 10000, "missions seeded in the server's database")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "serve", "-emails", strconv.Itoa(*emails), "-missions", strconv.Itoa(*missions))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start server process: %w", err)
	}
	defer func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	base, token, err := waitReady(stdout, 5*time.Minute)
	if err != nil {
		return err
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConns: *clients * 2, MaxIdleConnsPerHost: *clients * 2, MaxConnsPerHost: 0}}
	endpoints := []struct{ name, path string }{
		{"feed", "/api/v1/missions?limit=20"},
		{"search", "/api/v1/search?q=flight+to+lisbon&limit=20"},
		{"emails", "/api/v1/emails?limit=50"},
	}
	for _, ep := range endpoints {
		status, err := get(ctx, hc, base+ep.path, token)
		if err != nil {
			return fmt.Errorf("probe %s: %w", ep.name, err)
		}
		if status == http.StatusNotFound {
			fmt.Fprintf(os.Stderr, "skip %s: GET %s answers 404 (endpoint not in this build)\n", ep.name, ep.path)
			continue
		}
		if status != http.StatusOK {
			return fmt.Errorf("probe %s: status %d", ep.name, status)
		}
		// Warm up (connections, caches, the first ranking), unmeasured: the
		// figures are for a gateway that has been serving for a while.
		hammer(ctx, hc, base+ep.path, token, *clients, 2**clients, *limit)
		lat, errs, elapsed := hammer(ctx, hc, base+ep.path, token, *clients, *requests, *limit)
		if len(lat) == 0 {
			return fmt.Errorf("%s: no successful requests (%d errors)", ep.name, errs)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Printf("BENCH gateway_%s_p50 %.2f ms\n", ep.name, ms(lat[len(lat)/2]))
		fmt.Printf("BENCH gateway_%s_p99 %.2f ms\n", ep.name, ms(lat[len(lat)*99/100]))
		fmt.Printf("BENCH gateway_%s_throughput %.0f req/s\n", ep.name, float64(len(lat))/elapsed.Seconds())
		if errs > 0 {
			fmt.Printf("BENCH gateway_%s_errors %d count\n", ep.name, errs)
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func waitReady(r io.Reader, timeout time.Duration) (base, token string, err error) {
	type res struct{ base, token string }
	ch := make(chan res, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "READY" {
				ch <- res{f[1], f[2]}
				return
			}
		}
		close(ch)
	}()
	select {
	case x, ok := <-ch:
		if !ok {
			return "", "", errors.New("server process exited before it was ready")
		}
		return x.base, x.token, nil
	case <-time.After(timeout):
		return "", "", errors.New("server process not ready in time")
	}
}

func get(ctx context.Context, hc *http.Client, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// hammer runs clients goroutines until n requests are done or the limit passes.
func hammer(ctx context.Context, hc *http.Client, url, token string, clients, n int, limit time.Duration) ([]time.Duration, int, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var next, errs atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/clients+1)
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				t0 := time.Now()
				status, err := get(ctx, hc, url, token)
				if err != nil || status != http.StatusOK {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, int(errs.Load()), time.Since(start)
}
