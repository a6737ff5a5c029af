package stack_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ownyou/home/internal/testmail"
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
	bin := chromium(t)
	baseURL, _ := startStack(t)
	shots := artifactsDir(t)
	t.Logf("screenshots in %s", shots)

	var mbox bytes.Buffer
	if err := testmail.WriteMbox(&mbox, testmail.Messages(25)); err != nil {
		t.Fatal(err)
	}
	mbox.WriteString(evilMessage)
	mboxPath := filepath.Join(t.TempDir(), "inbox.mbox")
	if err := os.WriteFile(mboxPath, mbox.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	const total = 26

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	defer cancelT()

	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			var buf []byte
			if err := chromedp.FullScreenshot(&buf, 100).Do(ctx); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644)
		})
	}
	step := func(name string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			var loc string
			_ = chromedp.Run(ctx, chromedp.Location(&loc), shot("failed-"+name))
			t.Fatalf("%s (at %s): %v", name, loc, err)
		}
	}
	waitJS := func(expr string) chromedp.Action {
		return chromedp.Poll(expr, nil, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))
	}

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

	var cards int
	step("feed",
		chromedp.Navigate(baseURL+"/#/feed"),
		waitJS(`!!document.querySelector('.mission, .empty')`),
		chromedp.Evaluate(`document.querySelectorAll('.mission').length`, &cards),
		shot("05-feed"),
	)
	if cards == 0 {
		var text string
		step("feed empty state", chromedp.Text(".empty b", &text))
		if text != "No missions yet" && text != "Missions are not available yet" {
			t.Errorf("feed without cards shows %q, want a clear empty state", text)
		}
	} else {
		step("evidence and feedback",
			chromedp.Click(".mission .why"),
			chromedp.WaitVisible(".mission .evidence"),
			shot("06-feed-evidence"),
			chromedp.Click(`.mission .hearts button[data-rating=love]`),
			waitJS(`document.querySelector('.mission .hearts button[data-rating=love]').classList.contains('on')`),
		)
	}

	step("search",
		chromedp.Navigate(baseURL+"/#/search?q=Lisbon"),
		waitJS(`!!document.querySelector('#search-results, .empty')`),
		shot("07-search"),
	)
	var hits int
	step("count hits", chromedp.Evaluate(`document.querySelectorAll('#search-results a.item').length`, &hits))
	if hits == 0 {
		t.Error("searching for Lisbon found nothing; 5 imported emails mention it")
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
