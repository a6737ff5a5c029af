package stack_test

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"github.com/ownyou/home/pkg/msgraph/graphfake"
)

// TestBrowserConnectsOutlookAndReconnectsAfterRevocation clicks "Connect
// Outlook" in real Chromium against a fake Microsoft authority and Graph
// mailbox: the browser signs in, lands back on Sources, the mailbox syncs;
// once the user withdraws the app's access the source says so and offers
// Reconnect, which signs in again.
func TestBrowserConnectsOutlookAndReconnectsAfterRevocation(t *testing.T) {
	chromium(t)
	of := oauthfake.New("ms-cid", "ms-secret")
	of.RotateRefresh = true
	t.Cleanup(of.Close)
	gf := graphfake.New("ada@contoso.test")
	gf.Authorize = of.ValidAccess
	t.Cleanup(gf.Close)
	gf.Add(gf.Folder("inbox"), []byte("From: a@example.com\r\nSubject: hello outlook\r\nMessage-ID: <o1@x>\r\n\r\nfirst\r\n"))
	gf.Add(gf.Folder("archive"), []byte("From: b@example.com\r\nSubject: archived\r\nMessage-ID: <o2@x>\r\n\r\nsecond\r\n"))
	for k, v := range map[string]string{
		"OWNYOU_MICROSOFT_CLIENT_ID": "ms-cid", "OWNYOU_MICROSOFT_CLIENT_SECRET": "ms-secret",
		"OWNYOU_MICROSOFT_AUTH_URL": of.AuthURL(), "OWNYOU_MICROSOFT_TOKEN_URL": of.TokenURL(), "OWNYOU_GRAPH_ENDPOINT": gf.Endpoint(),
		"OWNYOU_ADMIN_PASSWORD": "household secret", "OWNYOU_INGEST_RETRY_AFTER": "1s",
	} {
		t.Setenv(k, v)
	}
	baseURL, _ := startStack(t)
	b := newBrowser(t, artifactsDir(t))
	row := `document.querySelector('tr[data-source] td:nth-child(2)')?.textContent === 'ada@contoso.test'`

	b.step("sign in",
		chromedp.Navigate(baseURL),
		chromedp.WaitVisible("#auth-password"),
		chromedp.SendKeys("#auth-password", "household secret"),
		chromedp.Click("#auth-submit"),
		chromedp.WaitVisible("#app"),
	)
	b.step("connect outlook",
		chromedp.Navigate(baseURL+"/#/sources"),
		b.waitJS(`document.getElementById('connect-outlook')?.disabled === false`),
		chromedp.Click("#connect-outlook"),
		// the fake authority consents at once and sends the browser back
		b.waitJSAcross(`location.hash.includes('connected=') && document.body.textContent.includes('Account connected')`),
		b.waitJS(row),
		b.shot("outlook-01-connected"),
	)
	b.step("the mailbox syncs",
		b.waitJS(fmt.Sprintf(`(async () => { const r = await fetch('/api/v1/sources'); const j = await r.json(); const s = j.sources.find(x => x.kind === 'outlook'); return !!s && s.emails_count === 2 && s.status === 'idle'; })()`)),
	)
	of.RevokeAll()
	clickSyncNow := chromedp.Evaluate(`[...document.querySelectorAll('tr[data-source] td.actions button')].find(b => b.textContent === 'Sync now').click()`, nil)
	b.step("revoked access asks to reconnect",
		chromedp.Navigate(baseURL+"/#/sources"),
		b.waitJS(row),
		clickSyncNow,
		b.waitJS(`(async () => { const r = await fetch('/api/v1/sources'); const j = await r.json(); return j.sources.some(x => x.status === 'reconnect_needed'); })()`),
		chromedp.Navigate(baseURL+"/#/sources?again=1"),
		b.waitJS(`[...document.querySelectorAll('tr[data-source] td.actions button')].some(b => b.textContent === 'Reconnect')`),
		b.waitJS(`document.querySelector('tr[data-source] td.error')?.textContent.includes('Microsoft access was revoked')`),
		b.shot("outlook-02-reconnect-needed"),
	)
	b.step("reconnect",
		chromedp.Evaluate(`[...document.querySelectorAll('tr[data-source] td.actions button')].find(b => b.textContent === 'Reconnect').click()`, nil),
		b.waitJSAcross(`location.hash.includes('connected=')`),
		b.waitJS(`(async () => { const r = await fetch('/api/v1/sources'); const j = await r.json(); return j.sources.length === 1 && j.sources[0].status !== 'reconnect_needed'; })()`),
		b.shot("outlook-03-reconnected"),
	)
}
