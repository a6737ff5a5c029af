package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/store"
)

func TestGmailIncrementalSyncMirrorsLabelsAndKeepsDeletedMail(t *testing.T) {
	e, gm, _, _ := gmailEnv(t, 0)
	ctx := context.Background()
	starred := gm.Add([]byte("From: a@example.com\r\nSubject: keep\r\nMessage-ID: <keep@x>\r\n\r\nkeep me\r\n"), "INBOX", "UNREAD")
	deleted := gm.Add([]byte("From: a@example.com\r\nSubject: gone\r\nMessage-ID: <gone@x>\r\n\r\ndelete me\r\n"), "INBOX")
	t0 := time.Now()
	e.start()
	e.waitSynced("gm1", t0)

	gm.ModifyLabels(starred, []string{"STARRED"}, []string{"UNREAD"})
	gm.Delete(deleted)
	t1 := time.Now()
	if _, err := e.db.RequestSync(ctx, "gm1", false); err != nil {
		t.Fatal(err)
	}
	s := e.waitSynced("gm1", t1)
	if e.emails() != 2 {
		t.Fatalf("emails = %d: a mail deleted in Gmail must stay", e.emails())
	}
	byMsgID := map[string]store.Email{}
	page, err := e.db.ListEmails(ctx, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, em := range page.Emails {
		byMsgID[em.MessageID] = em
	}
	if k := byMsgID["keep@x"]; fmt.Sprint(k.Labels) != "[INBOX STARRED]" || k.DeletedAtSource != nil {
		t.Errorf("kept mail: labels %v deleted %v, want [INBOX STARRED] and not deleted", k.Labels, k.DeletedAtSource)
	}
	if g := byMsgID["gone@x"]; g.DeletedAtSource == nil {
		t.Errorf("deleted mail not marked deleted at source (run stats %s)", s.LastRun)
	}

	// History expired: the full resync refetches the mail, and the labels
	// it carries now replace the stored ones. What was deleted or trashed
	// meanwhile is not in its listing and is checked one by one: the
	// deleted mail is kept and marked, the trashed one relabeled.
	gm.ModifyLabels(starred, []string{"IMPORTANT"}, nil)
	lost := gm.Add([]byte("From: a@example.com\r\nSubject: lost\r\nMessage-ID: <lost@x>\r\n\r\ndeleted while history was lost\r\n"), "INBOX")
	binned := gm.Add([]byte("From: a@example.com\r\nSubject: binned\r\nMessage-ID: <binned@x>\r\n\r\ntrashed while history was lost\r\n"), "INBOX")
	tl := time.Now()
	if _, err := e.db.RequestSync(ctx, "gm1", false); err != nil {
		t.Fatal(err)
	}
	e.waitSynced("gm1", tl)
	gm.Delete(lost)
	gm.ModifyLabels(binned, []string{"TRASH"}, []string{"INBOX"})
	gm.ExpireHistory()
	t2 := time.Now()
	if _, err := e.db.RequestSync(ctx, "gm1", false); err != nil {
		t.Fatal(err)
	}
	e.waitSynced("gm1", t2)
	k, err := e.db.GetEmail(ctx, byMsgID["keep@x"].ID)
	if err != nil || fmt.Sprint(k.Labels) != "[INBOX STARRED IMPORTANT]" {
		t.Fatalf("after full resync: labels %v, %v", k.Labels, err)
	}
	page, err = e.db.ListEmails(ctx, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, em := range page.Emails {
		byMsgID[em.MessageID] = em
	}
	if l, ok := byMsgID["lost@x"]; !ok || l.DeletedAtSource == nil {
		t.Errorf("mail deleted while history was lost: stored %v, deleted at source %v; want kept and marked", ok, l.DeletedAtSource)
	}
	if b := byMsgID["binned@x"]; fmt.Sprint(b.Labels) != "[TRASH]" || b.DeletedAtSource != nil {
		t.Errorf("mail trashed while history was lost: labels %v deleted %v, want [TRASH] and not deleted", b.Labels, b.DeletedAtSource)
	}
}
