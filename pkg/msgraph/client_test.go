package msgraph_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/googleoauth"
	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"github.com/ownyou/home/pkg/msgraph"
	"github.com/ownyou/home/pkg/msgraph/graphfake"
)

// newClient returns a client authorized by a real token source refreshing
// against a fake token endpoint, reading a fake mailbox.
func newClient(t *testing.T, opt msgraph.Options) (*msgraph.Client, *graphfake.Server, *oauthfake.Server, string) {
	t.Helper()
	gf := graphfake.New("ada@contoso.test")
	t.Cleanup(gf.Close)
	of := oauthfake.New("cid", "secret")
	of.RotateRefresh = true
	t.Cleanup(of.Close)
	gf.Authorize = of.ValidAccess
	rt := of.IssueRefreshToken()
	oc := msgraph.OAuthConfig{ClientID: "cid", ClientSecret: "secret", TokenURL: of.TokenURL()}
	ts := oc.TokenSource(context.Background(), nil, &oauth2.Token{RefreshToken: rt}, nil)
	opt.Endpoint = gf.Endpoint()
	if opt.BackoffMax == 0 {
		opt.BackoffInitial, opt.BackoffMax = time.Millisecond, 10*time.Millisecond
	}
	c, err := msgraph.New(oauth2.NewClient(context.Background(), ts), opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, gf, of, rt
}

func mail(n int) []byte {
	return []byte(fmt.Sprintf("Subject: m%d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n", n, n, n))
}

func TestFoldersListsNestedFoldersWithPathsAndWellKnownNames(t *testing.T) {
	c, gf, _, _ := newClient(t, msgraph.Options{})
	p := gf.AddFolder("", "Projects")
	gf.AddFolder(p, "2026")
	for i := range 120 { // more than one page of top-level folders
		gf.AddFolder("", fmt.Sprintf("Folder %03d", i))
	}
	fs, err := c.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]msgraph.Folder{}
	for _, f := range fs {
		byPath[f.Path] = f
	}
	if len(fs) != 6+2+120 {
		t.Errorf("%d folders, want 128", len(fs))
	}
	if f, ok := byPath["Projects/2026"]; !ok || f.ParentFolderID != p {
		t.Errorf("child folder missing or wrong parent: %+v", f)
	}
	if byPath["Deleted Items"].WellKnown != "deleteditems" || byPath["Inbox"].WellKnown != "inbox" {
		t.Errorf("well-known names not resolved: %+v %+v", byPath["Deleted Items"], byPath["Inbox"])
	}
}

func TestDeltaPagesToADeltaLinkAndReportsRemovals(t *testing.T) {
	c, gf, _, _ := newClient(t, msgraph.Options{PageSize: 4})
	inbox := gf.Folder("inbox")
	var ids []string
	for i := range 9 {
		ids = append(ids, gf.Add(inbox, mail(i)))
	}
	ctx := context.Background()
	link, pages, seen := c.InitialDelta(inbox), 0, 0
	var p msgraph.DeltaPage
	for {
		var err error
		if p, err = c.Delta(ctx, link); err != nil {
			t.Fatal(err)
		}
		pages++
		seen += len(p.Items)
		if p.NextLink == "" {
			break
		}
		link = p.NextLink
	}
	if pages != 3 || seen != 9 || p.DeltaLink == "" {
		t.Fatalf("initial round: %d pages, %d items, delta link %q; want 3 pages of ≤4 and a delta link", pages, seen, p.DeltaLink)
	}
	gf.Delete(ids[0])
	gf.Move(ids[1], gf.Folder("archive"))
	added := gf.Add(inbox, mail(99))
	next, err := c.Delta(ctx, p.DeltaLink)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range next.Items {
		kind := "item"
		if it.Removed != nil {
			kind = "removed:" + it.Removed.Reason
		}
		got[it.ID] = kind
	}
	want := map[string]string{ids[0]: "removed:deleted", ids[1]: "removed:deleted", added: "item"}
	if fmt.Sprint(got) != fmt.Sprint(want) || next.DeltaLink == "" {
		t.Errorf("changes %v, want %v", got, want)
	}
	gf.ExpireDeltaTokens()
	if _, err := c.Delta(ctx, next.DeltaLink); !errors.Is(err, msgraph.ErrDeltaExpired) {
		t.Errorf("expired delta link: %v, want ErrDeltaExpired", err)
	}
}

func TestDeltaRefusesLinksToAnotherHost(t *testing.T) {
	c, _, _, _ := newClient(t, msgraph.Options{})
	_, err := c.Delta(context.Background(), "https://attacker.example/v1.0/me/mailFolders/x/messages/delta")
	if err == nil || !strings.Contains(err.Error(), "not on") {
		t.Fatalf("foreign link followed: %v", err)
	}
}

func TestMIMEReturnsRawAndEnforcesTheSizeLimit(t *testing.T) {
	c, gf, _, _ := newClient(t, msgraph.Options{MaxMessageBytes: 100})
	inbox := gf.Folder("inbox")
	small := gf.Add(inbox, mail(1))
	big := gf.Add(inbox, append(mail(2), []byte(strings.Repeat("x", 200))...))
	raw, err := c.MIME(context.Background(), small)
	if err != nil || string(raw) != string(mail(1)) {
		t.Fatalf("MIME = %q, %v", raw, err)
	}
	if _, err := c.MIME(context.Background(), big); !errors.Is(err, msgraph.ErrTooLarge) {
		t.Errorf("oversized MIME: %v, want ErrTooLarge", err)
	}
	gf.Delete(small)
	if _, err := c.MIME(context.Background(), small); !errors.Is(err, msgraph.ErrNotFound) {
		t.Errorf("deleted message: %v, want ErrNotFound", err)
	}
}

func TestThrottlingIsRetriedAndConcurrencyStaysWithinTheMailboxLimit(t *testing.T) {
	c, gf, _, _ := newClient(t, msgraph.Options{Concurrency: 3})
	gf.Limit = 3
	inbox := gf.Folder("inbox")
	var ids []string
	for i := range 40 {
		ids = append(ids, gf.Add(inbox, mail(i)))
	}
	gf.Throttle(2, http.StatusTooManyRequests, 1)
	gf.Throttle(1, http.StatusServiceUnavailable, 1)
	errs := make(chan error, len(ids))
	for _, id := range ids {
		go func() { _, err := c.MIME(context.Background(), id); errs <- err }()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if gf.MaxInFlight() > 3 || gf.Calls("throttled") != 3 {
		t.Errorf("max in flight %d (limit 3), throttled %d (want the 3 queued only)", gf.MaxInFlight(), gf.Calls("throttled"))
	}
}

func TestGiveUpAfterMaxAttempts(t *testing.T) {
	c, gf, _, _ := newClient(t, msgraph.Options{MaxAttempts: 2})
	id := gf.Add(gf.Folder("inbox"), mail(1))
	gf.Throttle(5, http.StatusServiceUnavailable, 0)
	_, err := c.MIME(context.Background(), id)
	var ge *msgraph.Error
	if !errors.As(err, &ge) || ge.Status != http.StatusServiceUnavailable || gf.Calls("throttled") != 2 {
		t.Fatalf("after 2 attempts: %v (%d answered 503)", err, gf.Calls("throttled"))
	}
}

func TestRevokedGrantIsReconnectNeeded(t *testing.T) {
	c, gf, of, rt := newClient(t, msgraph.Options{})
	gf.Add(gf.Folder("inbox"), mail(1))
	if _, err := c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
	of.Revoke(rt)
	_, err := c.Me(context.Background())
	if !errors.Is(err, googleoauth.ErrReconnectNeeded) {
		t.Fatalf("revoked grant: %v, want ErrReconnectNeeded", err)
	}
}

func TestMeReturnsTheAddressOrThePrincipalName(t *testing.T) {
	c, gf, _, _ := newClient(t, msgraph.Options{})
	u, err := c.Me(context.Background())
	if err != nil || u.Address() != "ada@contoso.test" {
		t.Fatalf("me = %+v, %v", u, err)
	}
	gf.SetUser(graphfake.User{ID: "u2", UserPrincipalName: "Bob@Outlook.test"})
	if u, err = c.Me(context.Background()); err != nil || u.Address() != "bob@outlook.test" {
		t.Fatalf("me without mail = %+v, %v", u, err)
	}
}

func TestAuthCodeURLAsksForOfflineMailReadWithPKCE(t *testing.T) {
	oc := msgraph.OAuthConfig{ClientID: "cid", RedirectURL: "https://nas.example/api/v1/oauth/microsoft/callback"}
	u := oc.AuthCodeURL("st", oauth2.GenerateVerifier())
	for _, want := range []string{"https://login.microsoftonline.com/common/oauth2/v2.0/authorize?", "code_challenge_method=S256",
		"scope=offline_access+User.Read+Mail.Read", "prompt=select_account", "state=st"} {
		if !strings.Contains(u, want) {
			t.Errorf("auth URL %s lacks %s", u, want)
		}
	}
}
