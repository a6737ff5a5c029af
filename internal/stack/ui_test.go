package stack_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ownyou/home/internal/testmail"
	"github.com/ownyou/home/pkg/testkit"
)

// evilMessage is an HTML email whose payloads would change document.title or
// set window.pwned if any of them ran.
const evilMessage = `From attacker@evil.example Mon Jan  5 10:00:00 2026
Message-ID: <evil-1@evil.example>
From: Attacker <attacker@evil.example>
To: me@home.example
Subject: You won a prize
Date: Mon, 05 Jan 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><body><h2>Claim your prize</h2>
<script>window.pwned = 1; parent.document.title = 'pwned-script';</script>
<img src="x.png" onerror="parent.document.title='pwned-onerror'; window.pwned = 2">
<img src="https://tracker.evil.example/pixel.gif" alt="tracker">
<a id="jslink" href="javascript:parent.document.title='pwned-link'">Click here</a>
<svg onload="parent.document.title='pwned-svg'"></svg>
<p>Totally legitimate text.</p>
</body></html>

`

func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("OWNYOU_CHROMIUM"), "/usr/bin/chromium", "chromium"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("chromium not installed (apt-get install -y chromium, or set OWNYOU_CHROMIUM)")
	return ""
}

func artifactsDir(t *testing.T) string {
	dir := os.Getenv("OWNYOU_ARTIFACTS_DIR")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "ui-screens")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowserUI drives the embedded UI in headless Chromium through a whole
// first day: setup, sign-in, an mbox import, the pipeline reaching 100 %, the
// feed, search, the mail reader (with an attack mail that must stay inert),
// and every other screen, saving a screenshot of each.
func TestBrowserUI(t *testing.T) {
	chromium(t) // skips early where there is no browser
	baseURL, db := startStack(t)
	shots := artifactsDir(t)
	t.Logf("screenshots in %s", shots)

	// 25 everyday mails, four bookings the local agents turn into cards (a
	// trip, a table, an order) and one attack mail.
	var mbox bytes.Buffer
	msgs := append(testmail.Messages(25), testmail.Bookings(time.Now())...)
	if err := testmail.WriteMbox(&mbox, msgs); err != nil {
		t.Fatal(err)
	}
	mbox.WriteString(evilMessage)
	mboxPath := filepath.Join(t.TempDir(), "inbox.mbox")
	if err := os.WriteFile(mboxPath, mbox.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	total := len(msgs) + 1

	b := newBrowser(t, shots)
	step, waitJS, shot := b.step, b.waitJS, b.shot

	step("setup",
		chromedp.Navigate(baseURL),
		chromedp.WaitVisible("#auth-confirm"),
		chromedp.SendKeys("#auth-password", "household secret"),
		chromedp.SendKeys("#auth-confirm", "household secret"),
		shot("01-setup"),
		chromedp.Click("#auth-submit"),
		chromedp.WaitVisible("#app"),
	)
	step("sign out and sign in",
		chromedp.Navigate(baseURL+"/#/settings"),
		chromedp.WaitVisible("#signout"),
		chromedp.Click("#signout"),
		chromedp.WaitVisible("#auth-password"),
		chromedp.SendKeys("#auth-password", "wrong password"),
		chromedp.Click("#auth-submit"),
		waitJS(`document.getElementById('auth-error').textContent.length > 0`),
		shot("02-login-error"),
		chromedp.Evaluate(`document.getElementById('auth-password').value = ''`, nil),
		chromedp.SendKeys("#auth-password", "household secret"),
		chromedp.Click("#auth-submit"),
		chromedp.WaitVisible("#app"),
	)
	step("import an mbox",
		chromedp.Navigate(baseURL+"/#/sources"),
		chromedp.WaitVisible("#upload-file"),
		chromedp.SetUploadFiles("#upload-file", []string{mboxPath}),
		chromedp.Click("#upload-submit"),
		waitJS(`(document.querySelector('#import-status')||{}).dataset?.status === 'done'`),
		shot("03-sources"),
	)
	step("pipeline reaches 100%",
		chromedp.Navigate(baseURL+"/#/pipeline"),
		chromedp.WaitVisible(".stage"),
		// 0 of 0 also reads 100%: wait until every stage counts the whole mailbox.
		waitJS(fmt.Sprintf(`[...document.querySelectorAll('.stage')].length === 4 && [...document.querySelectorAll('.stage')].every(e => e.querySelector('.big-num')?.textContent === '100%%' && (e.querySelector('.muted')?.textContent || '').startsWith('%d of %d'))`, total, total)),
		shot("04-pipeline"),
	)
	var processed string
	step("read counts", chromedp.Text(`.stage[data-stage=agents] .muted`, &processed))
	if !strings.HasPrefix(processed, fmt.Sprint(total)+" of "+fmt.Sprint(total)) {
		t.Errorf("agents stage shows %q, want %d of %d", processed, total, total)
	}

	step("workers alive on every stage",
		// the heartbeats of the stack's services, shown per stage
		waitJS(`[...document.querySelectorAll('.stage')].every(e => Number(e.querySelector('.workers')?.dataset.alive) >= 1)`),
		waitJS(`document.querySelectorAll('.stage .worker .beat').length >= 4 && !document.querySelector('.stage.stalled')`),
		shot("04b-pipeline-workers"),
	)
	// A source whose sync stopped reporting (silent past OWNYOU_STALL_AFTER,
	// not yet failed by ingest) is flagged live, and the flag clears with it.
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO sources (id, kind, account, status, heartbeat_at)
		VALUES ('stuck', 'imap', 'stuck@home.example', 'syncing', now() - interval '3 minutes')`); err != nil {
		t.Fatal(err)
	}
	step("a stalled source is flagged",
		waitJS(`!!document.querySelector('.stalled-source[data-source=stuck]') && !!document.querySelector('.stage[data-stage=ingest].stalled .stall-reason')`),
		shot("04c-pipeline-stalled-source"),
	)
	if _, err := db.Pool.Exec(context.Background(), `DELETE FROM sources WHERE id = 'stuck'`); err != nil {
		t.Fatal(err)
	}
	step("the stall flag clears", waitJS(`!document.querySelector('.stalled-source') && !document.querySelector('.stage.stalled')`))

	// An IMAP source whose sign-in stopped working offers Reconnect (the IMAP
	// form then replaces only its sign-in), and Pause works from its row.
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO sources (id, kind, account, status, config, last_error)
		VALUES ('locked', 'imap', 'locked@home.example', 'reconnect_needed',
			'{"host":"imap.home.example","port":993,"username":"locked@home.example","folders":["INBOX"],"auth":"password"}',
			'imap login: authentication failed')`); err != nil {
		t.Fatal(err)
	}
	clickInRow := func(text string) chromedp.Action {
		return chromedp.Evaluate(fmt.Sprintf(`[...document.querySelectorAll('tr[data-source=locked] td.actions button')].find(b => b.textContent === %q).click()`, text), nil)
	}
	step("reconnect a source",
		chromedp.Navigate(baseURL+"/#/sources"),
		waitJS(`[...document.querySelectorAll('tr[data-source=locked] td.actions button')].some(b => b.textContent === 'Reconnect')`),
		clickInRow("Reconnect"),
		waitJS(`document.querySelector('#imap-form button[type=submit]').textContent === 'Update sign-in' && document.querySelector('#imap-form input[name=host]').value === 'imap.home.example' && document.querySelector('#imap-form input[name=host]').disabled`),
		shot("03b-sources-reconnect"),
		clickInRow("Pause"),
		waitJS(`(document.querySelector('tr[data-source=locked] .tag')||{}).textContent === 'paused' && [...document.querySelectorAll('tr[data-source=locked] td.actions button')].some(b => b.textContent === 'Resume')`),
	)
	var lockedStatus string
	if err := db.Pool.QueryRow(context.Background(), `SELECT status FROM sources WHERE id = 'locked'`).Scan(&lockedStatus); err != nil || lockedStatus != "paused" {
		t.Fatalf("after Pause the source is %q (%v), want paused", lockedStatus, err)
	}
	if _, err := db.Pool.Exec(context.Background(), `DELETE FROM sources WHERE id = 'locked'`); err != nil {
		t.Fatal(err)
	}

	// The agents look at the mailbox once the import's burst is over; wait
	// (through the API) for the cards the bookings make.
	trip, table, order := waitForCards(t, baseURL)

	var cards int
	step("feed",
		chromedp.Navigate(baseURL+"/#/feed"),
		chromedp.WaitVisible(cardSel(trip)),
		chromedp.WaitVisible(cardSel(table)),
		chromedp.WaitVisible(cardSel(order)),
		chromedp.Evaluate(`document.querySelectorAll('.mission').length`, &cards),
		shot("05-feed"),
	)
	if cards < 3 {
		t.Errorf("feed shows %d cards, want at least the trip, the table and the order", cards)
	}
	var evidence string
	step("why this mission",
		chromedp.Click(cardSel(trip)+" .why"),
		chromedp.WaitVisible(cardSel(trip)+" .evidence a.evidence-link"),
		chromedp.Text(cardSel(trip)+" .evidence", &evidence),
		shot("06-feed-evidence"),
	)
	for _, subject := range []string{"Your flight itinerary X7KQ2P", "Your stay at The Hoxton, Shoreditch is confirmed"} {
		if !strings.Contains(evidence, subject) {
			t.Errorf("the trip's evidence %q does not list %q", evidence, subject)
		}
	}
	// A change made elsewhere (here: the table rated through the API, as from
	// a phone) reaches the feed live, and the evidence the user opened stays
	// open: the card they are reading is not redrawn under them.
	rate(t, baseURL, table, "like")
	step("a live update keeps the open evidence",
		waitJS(`!!document.querySelector('`+cardSel(table)+` .hearts button[data-rating=like].on')`),
		chromedp.WaitVisible(cardSel(trip)+" .evidence a.evidence-link"),
	)
	step("open the evidence email",
		chromedp.Click(cardSel(trip)+" .evidence a.evidence-link"),
		chromedp.WaitVisible("#mail-frame"),
		waitJS(`document.getElementById('mail-frame').srcdoc.includes('X7KQ2P') || document.getElementById('mail-frame').srcdoc.includes('83920174')`),
		shot("06b-evidence-email"),
	)
	step("love the trip",
		chromedp.Navigate(baseURL+"/#/feed"),
		chromedp.WaitVisible(cardSel(trip)),
		chromedp.Click(cardSel(trip)+` .hearts button[data-rating=love]`),
		waitJS(`document.querySelector('`+cardSel(trip)+` .hearts button[data-rating=love]').classList.contains('on')`),
	)
	if m := getMission(t, baseURL, trip); m.Rating != "love" || len(m.History) == 0 {
		t.Errorf("after love, the API has rating %q and %d feedback entries", m.Rating, len(m.History))
	}
	step("dismiss the order",
		chromedp.Click(cardSel(order)+" button.dismiss"),
		chromedp.WaitNotPresent(cardSel(order)),
	)
	if m := getMission(t, baseURL, order); m.Status != "dismissed" {
		t.Errorf("after dismiss, the order card's status is %q", m.Status)
	}
	step("snooze the table",
		chromedp.Click(cardSel(table)+" button.snooze"),
		chromedp.WaitNotPresent(cardSel(table)),
	)
	if m := getMission(t, baseURL, table); m.Status != "snoozed" || m.SnoozedUntil.Before(time.Now()) {
		t.Errorf("after snooze, the table card is %q until %s", m.Status, m.SnoozedUntil)
	}
	var gone bool
	step("feed remembers",
		chromedp.Reload(),
		chromedp.WaitVisible(cardSel(trip)+` .hearts button[data-rating=love].on`),
		chromedp.Evaluate(`!document.querySelector('`+cardSel(order)+`') && !document.querySelector('`+cardSel(table)+`')`, &gone),
		shot("06c-feed-after-feedback"),
	)
	if !gone {
		t.Error("the dismissed or snoozed card is back in the feed after a reload")
	}

	step("search",
		chromedp.Navigate(baseURL+"/#/search?q=Lisbon"),
		waitJS(`!!document.querySelector('#search-results, .empty')`),
		shot("07-search"),
	)
	var hits, marked, byWords int
	step("count hits",
		chromedp.Evaluate(`document.querySelectorAll('#search-results a.item').length`, &hits),
		chromedp.Evaluate(`[...document.querySelectorAll('#search-results a.item .snip mark')].filter(m => /lisbon/i.test(m.textContent)).length`, &marked),
		chromedp.Evaluate(`document.querySelectorAll('#search-results a.item .found-by .tag[data-retriever=keyword]').length`, &byWords),
	)
	if hits == 0 {
		t.Error("searching for Lisbon found nothing; 5 imported emails mention it")
	}
	if marked == 0 || byWords == 0 {
		t.Errorf("Lisbon hits: %d snippets mark the word, %d say exact words found them; want both", marked, byWords)
	}

	step("mail list",
		chromedp.Navigate(baseURL+"/#/mail"),
		chromedp.WaitVisible("#mail-list a.item"),
		shot("08-mail"),
	)
	var href string
	step("find the attack mail",
		chromedp.Navigate(baseURL+"/#/mail?q=prize"),
		chromedp.WaitVisible("#mail-list a.item"),
		chromedp.AttributeValue("#mail-list a.item", "href", &href, nil),
	)
	var title, srcdoc string
	var pwned bool
	step("open the attack mail",
		chromedp.Navigate(baseURL+"/"+href),
		chromedp.WaitVisible("#mail-frame"),
		waitJS(`document.getElementById('mail-frame').srcdoc.length > 0`),
		chromedp.Sleep(1500*time.Millisecond),
		chromedp.Title(&title),
		chromedp.Evaluate(`document.getElementById('mail-frame').srcdoc`, &srcdoc),
		chromedp.Evaluate(`window.pwned !== undefined`, &pwned),
		shot("09-mail-reader"),
	)
	if strings.Contains(title, "pwned") || pwned {
		t.Errorf("a payload ran: title %q, window.pwned set %v", title, pwned)
	}
	low := strings.ToLower(srcdoc)
	for _, bad := range []string{"<script", "onerror", "onload", "javascript:"} {
		if strings.Contains(low, bad) {
			t.Errorf("the mail frame still holds %q", bad)
		}
	}
	if !strings.Contains(srcdoc, "Totally legitimate text.") {
		t.Error("the harmless part of the attack mail is missing")
	}
	for i, v := range []string{"profile", "settings"} {
		step(v,
			chromedp.Navigate(baseURL+"/#/"+v),
			waitJS(`!document.querySelector('main p.muted') || document.querySelector('main p.muted').textContent !== 'Loading…'`),
			chromedp.WaitVisible("main h1"),
			shot(fmt.Sprintf("%02d-%s", 10+i, v)),
		)
	}
	step("phone layout",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
		chromedp.Navigate(baseURL+"/#/pipeline"),
		chromedp.WaitVisible(".stage"),
		shot("12-phone-pipeline"),
		chromedp.Navigate(baseURL+"/#/feed"),
		waitJS(`!!document.querySelector('.mission, .empty')`),
		shot("13-phone-feed"),
	)
}

// cardSel selects a mission card of the feed by id.
func cardSel(id string) string { return `.mission[data-id="` + id + `"]` }

type missionJSON struct {
	ID           string    `json:"id"`
	Agent        string    `json:"agent"`
	Kind         string    `json:"kind"`
	Title        string    `json:"title"`
	Status       string    `json:"status"`
	Rating       string    `json:"rating"`
	SnoozedUntil time.Time `json:"snoozed_until"`
	History      []struct {
		Kind   string `json:"kind"`
		Rating string `json:"rating"`
	} `json:"history"`
}

// rate rates a mission through the API.
func rate(t *testing.T, baseURL, id, rating string) {
	t.Helper()
	resp, err := post(baseURL+"/api/v1/missions/"+id+"/feedback", "application/json",
		strings.NewReader(fmt.Sprintf(`{"kind":"rate","rating":%q}`, rating)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("rate %s: %d %s", id, resp.StatusCode, b)
	}
}

func getMission(t *testing.T, baseURL, id string) missionJSON {
	t.Helper()
	var m missionJSON
	getJSON(t, baseURL+"/api/v1/missions/"+id, &m)
	return m
}

// waitForCards waits until the agents have made the cards of
// testmail.Bookings and returns their ids: the trip (flight and hotel), the
// table and the order.
func waitForCards(t *testing.T, baseURL string) (trip, table, order string) {
	t.Helper()
	var feed struct {
		Missions []missionJSON `json:"missions"`
	}
	testkit.Eventually(t, 2*time.Minute, func() bool {
		getJSON(t, baseURL+"/api/v1/missions?limit=100", &feed)
		trip, table, order = "", "", ""
		for _, m := range feed.Missions {
			switch {
			case m.Agent == "travel" && m.Kind == "trip" && strings.HasPrefix(m.Title, "Trip to London"):
				trip = m.ID
			case m.Agent == "restaurant" && m.Kind == "reservation" && strings.Contains(m.Title, "Bistro Verde"):
				table = m.ID
			case m.Agent == "shopping" && m.Kind == "order" && strings.Contains(m.Title, "Sony WH-1000XM5"):
				order = m.ID
			}
		}
		return trip != "" && table != "" && order != ""
	}, "the agents did not make the trip, table and order cards")
	return trip, table, order
}
