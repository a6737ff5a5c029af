package mailparse

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
)

var genWords = strings.Fields(`the a meeting invoice flight booking hotel order shipped delivery payment
receipt newsletter weekly update project deadline tomorrow friday report quarterly review team lunch
offer discount sale subscription account password security alert statement bank transfer concert tickets
restaurant reservation confirmed cancelled rescheduled doctor appointment insurance renewal family
holiday photos birthday party school parents evening football training recipe garden`)

// WriteSyntheticMbox writes n varied synthetic messages (plain, HTML-only,
// multipart with an attachment, latin-1) as an mboxrd stream, for
// benchmarks and load tests. The output is deterministic for a seed.
func WriteSyntheticMbox(w io.Writer, n int, seed uint64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	para := func(words int) string {
		var b strings.Builder
		for i := 0; i < words; i++ {
			if i > 0 {
				if i%14 == 0 {
					b.WriteString(".\n")
				} else {
					b.WriteByte(' ')
				}
			}
			b.WriteString(genWords[r.IntN(len(genWords))])
		}
		return b.String()
	}
	for i := 0; i < n; i++ {
		date := base.Add(time.Duration(i) * 7 * time.Minute)
		fmt.Fprintf(bw, "From %d@xxx %s\n", 1780000000000000000+i, date.Format("Mon Jan 02 15:04:05 -0700 2006"))
		fmt.Fprintf(bw, "X-GM-THRID: %d\nX-Gmail-Labels: Inbox\nReceived: from mx%d.example.net by mx.example.com; %s\n", 1780000000000000000+i, i%7, date.Format(time.RFC1123Z))
		fmt.Fprintf(bw, "From: Sender %d <sender%d@shop%d.example>\nTo: me@example.com\nSubject: %s #%d\nDate: %s\nMessage-ID: <gen-%d-%d@example.com>\nMIME-Version: 1.0\n",
			i%97, i%97, i%13, para(5), i, date.Format(time.RFC1123Z), seed, i)
		body := para(60 + r.IntN(400))
		switch i % 4 {
		case 0:
			fmt.Fprintf(bw, "Content-Type: text/plain; charset=utf-8\n\n%s\n>From the team (escaped by the mbox writer)\n", body)
		case 1:
			fmt.Fprintf(bw, "Content-Type: text/html; charset=utf-8\n\n<html><head><style>p{color:#333}</style></head><body><p>%s</p><script>track()</script></body></html>\n", strings.ReplaceAll(body, "\n", "</p><p>"))
		case 2:
			fmt.Fprintf(bw, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\nContent-Type: multipart/alternative; boundary=\"a%d\"\n\n--a%d\nContent-Type: text/plain; charset=utf-8\n\n%s\n--a%d\nContent-Type: text/html; charset=utf-8\n\n<p>%s</p>\n--a%d--\n--b%d\nContent-Type: application/pdf; name=\"invoice-%d.pdf\"\nContent-Disposition: attachment; filename=\"invoice-%d.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\n--b%d--\n",
				i, i, i, i, body, i, body, i, i, i, i, i)
		default:
			fmt.Fprintf(bw, "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nCaf=E9 cr=E8me: %s\n", body)
		}
		bw.WriteString("\n")
	}
	return bw.Flush()
}
